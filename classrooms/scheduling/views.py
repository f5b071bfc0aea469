"""The scheduling pages: a class's schedule, with forms to add a lesson or a weekly series, move,
rename or cancel one lesson, and change or end a series from a day on.

Every view resolves the class, lesson or series through an `access_*_for_scheduling` selector, so
pupils, guardians, teachers of other classes and people of other schools get a 404. Views parse
input, call one service and redirect; a refusal (a clash included) is shown on the form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import User
from classrooms.models import LessonSeries, SchoolClass
from classrooms.scheduling import selectors, services
from classrooms.scheduling.forms import (
    WEEKDAY_NAMES,
    LessonForm,
    SeriesCancelForm,
    SeriesChangeForm,
    SeriesForm,
)
from classrooms.scheduling.occurrences import local_day

# Where a service's refusal about one of its parameters is shown on the lesson form.
_LESSON_FIELDS = {"starts_at": "day", "ends_at": "duration_minutes"}


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User), "login_required lets only real users through"  # noqa: S101
    return user


def _add_errors(form: Form, error: ValidationError, aliases: dict[str, str] | None = None) -> None:
    """Put a service's refusal on the form: next to its field when the form has it."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        name = (aliases or {}).get(field, field)
        form.add_error(name if name in form.fields else None, errors)


def _schedule_url(school_class: SchoolClass | int) -> str:
    class_id = school_class if isinstance(school_class, int) else school_class.pk
    return reverse("classrooms:scheduling:class_schedule", args=[class_id])


def _form_page(
    request: HttpRequest, school_class: SchoolClass, form: Form, **context: Any
) -> HttpResponse:
    return render(
        request,
        "classrooms/scheduling/form.html",
        {
            "school_class": school_class,
            "school": school_class.school,
            "form": form,
            "cancel_url": _schedule_url(school_class),
            **context,
        },
    )


@dataclass(frozen=True)
class SeriesRow:
    series: LessonSeries
    days: str


@require_GET
@login_required
def class_schedule(request: HttpRequest, class_id: int) -> HttpResponse:
    school_class = selectors.access_class_for_scheduling(user=_user(request), class_id=class_id)
    now = timezone.now()
    today = local_day(school_class.school.tzinfo, now)
    series = [
        SeriesRow(s, ", ".join(str(WEEKDAY_NAMES[code]) for code in s.weekday_codes))
        for s in selectors.class_series(school_class=school_class, today=today)
    ]
    return render(
        request,
        "classrooms/scheduling/schedule.html",
        {
            "school_class": school_class,
            "school": school_class.school,
            "series_rows": series,
            "lessons": list(selectors.class_lessons_to_come(school_class=school_class, now=now)),
            "now": now,
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def lesson_create(request: HttpRequest, class_id: int) -> HttpResponse:
    user = _user(request)
    school_class = selectors.access_class_for_scheduling(user=user, class_id=class_id)
    form = LessonForm(request.POST or None, school=school_class.school)
    if request.method == "POST" and form.is_valid():
        try:
            services.lesson_schedule(
                actor=user,
                school_class=school_class,
                title=form.cleaned_data["title"],
                starts_at=form.cleaned_data["starts_at"],
                ends_at=form.cleaned_data["ends_at"],
            )
        except ValidationError as error:
            _add_errors(form, error, _LESSON_FIELDS)
        else:
            messages.success(request, _("The lesson was scheduled."))
            return redirect(_schedule_url(school_class))
    return _form_page(
        request, school_class, form, title=_("Schedule a lesson"), submit=_("Schedule")
    )


@require_http_methods(["GET", "POST"])
@login_required
def series_create(request: HttpRequest, class_id: int) -> HttpResponse:
    user = _user(request)
    school_class = selectors.access_class_for_scheduling(user=user, class_id=class_id)
    form = SeriesForm(
        request.POST or None,
        initial={"title": school_class.course.title},
        school=school_class.school,
        term_ends_on=school_class.term.ends_on,
    )
    if request.method == "POST" and form.is_valid():
        try:
            series = services.series_create(
                actor=user, school_class=school_class, **form.cleaned_data
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            count = series.lessons.count()
            messages.success(
                request,
                ngettext(
                    "The series was created with %(n)d lesson.",
                    "The series was created with %(n)d lessons.",
                    count,
                )
                % {"n": count},
            )
            return redirect(_schedule_url(school_class))
    return _form_page(
        request, school_class, form, title=_("New weekly series"), submit=_("Create the series")
    )


@require_http_methods(["GET", "POST"])
@login_required
def lesson_edit(request: HttpRequest, lesson_key: str) -> HttpResponse:
    user = _user(request)
    lesson = selectors.access_lesson_for_scheduling(user=user, lesson_key=lesson_key)
    school = lesson.school
    starts, ends = (
        lesson.starts_at.astimezone(school.tzinfo),
        lesson.ends_at.astimezone(school.tzinfo),
    )
    form = LessonForm(
        request.POST or None,
        school=school,
        initial={
            "title": lesson.title,
            "day": starts.date(),
            "start_time": starts.time(),
            "duration_minutes": int((ends - starts).total_seconds() // 60),
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.lesson_update(
                actor=user,
                lesson=lesson,
                title=form.cleaned_data["title"],
                starts_at=form.cleaned_data["starts_at"],
                ends_at=form.cleaned_data["ends_at"],
            )
        except ValidationError as error:
            _add_errors(form, error, _LESSON_FIELDS)
        else:
            messages.success(request, _("The lesson was changed."))
            return redirect(_schedule_url(lesson.school_class))
    return _form_page(
        request,
        lesson.school_class,
        form,
        title=_("Move or rename %(title)s") % {"title": lesson.title},
        submit=_("Save"),
        lesson=lesson,
        series_note=lesson.series_id is not None,
    )


@require_http_methods(["GET", "POST"])
@login_required
def lesson_cancel(request: HttpRequest, lesson_key: str) -> HttpResponse:
    user = _user(request)
    lesson = selectors.access_lesson_for_scheduling(user=user, lesson_key=lesson_key)
    form = Form(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            services.lesson_cancel(actor=user, lesson=lesson)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("The lesson was cancelled."))
            return redirect(_schedule_url(lesson.school_class))
    return _form_page(
        request,
        lesson.school_class,
        form,
        title=_("Cancel %(title)s") % {"title": lesson.title},
        submit=_("Cancel the lesson"),
        danger=True,
        lesson=lesson,
        cancel_label=_("Keep it"),
    )


def _series_initial(series: LessonSeries, today: date) -> dict[str, object]:
    return {
        "from_date": max(today, series.starts_on),
        "title": series.title,
        "weekdays": list(series.weekday_codes),
        "start_time": series.start_time,
        "duration_minutes": series.duration_minutes,
        "ends_on": series.ends_on,
    }


@require_http_methods(["GET", "POST"])
@login_required
def series_edit(request: HttpRequest, series_id: int) -> HttpResponse:
    user = _user(request)
    series = selectors.access_series_for_scheduling(user=user, series_id=series_id)
    school_class = series.school_class
    today = local_day(series.school.tzinfo, timezone.now())
    form = SeriesChangeForm(
        request.POST or None, initial=_series_initial(series, today), school=series.school
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.series_update_from(actor=user, series=series, **form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("The series was changed."))
            return redirect(_schedule_url(school_class))
    return _form_page(
        request,
        school_class,
        form,
        title=_("Change %(title)s from a day on") % {"title": series.title},
        submit=_("Save"),
        series=series,
    )


@require_http_methods(["GET", "POST"])
@login_required
def series_cancel(request: HttpRequest, series_id: int) -> HttpResponse:
    user = _user(request)
    series = selectors.access_series_for_scheduling(user=user, series_id=series_id)
    today = local_day(series.school.tzinfo, timezone.now())
    form = SeriesCancelForm(
        request.POST or None, initial={"from_date": max(today, series.starts_on)}
    )
    if request.method == "POST" and form.is_valid():
        try:
            count = services.series_cancel_from(
                actor=user, series=series, from_date=form.cleaned_data["from_date"]
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request,
                ngettext("%(n)d lesson was cancelled.", "%(n)d lessons were cancelled.", count)
                % {"n": count},
            )
            return redirect(_schedule_url(series.school_class))
    return _form_page(
        request,
        series.school_class,
        form,
        title=_("End %(title)s early") % {"title": series.title},
        submit=_("Cancel these lessons"),
        danger=True,
        series=series,
        cancel_label=_("Keep them"),
    )
