"""Attendance pages: one lesson's register with its timeline and CSV export, and a class's term.

For the teachers of the class and the school's admins; everyone else gets a 404 from the
`access_*` selectors. Views parse input, call one selector or service, and render. Times are shown
in the school's zone.
"""

from __future__ import annotations

import csv
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import User
from classrooms.live import selectors, services
from classrooms.live.services import CORRECTION_REASON_MAX_CHARS
from classrooms.live.timeline import lesson_timeline
from classrooms.models import AttendanceStatus, Lesson

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class CorrectionForm(forms.Form):
    pupil = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=2**31 - 1)
    status = forms.ChoiceField(label=gettext_lazy("Status"), choices=AttendanceStatus.choices)
    reason = forms.CharField(
        label=gettext_lazy("Reason"), max_length=CORRECTION_REASON_MAX_CHARS, strip=True
    )


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User), "login_required lets only real users through"  # noqa: S101
    return user


def _digits(raw: str) -> int:
    """A positive id from a query or form value, or 0 for anything else."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 9:
        return int(raw)
    return 0


def _correction_form(pupil_id: int, data: Any = None, **kwargs: Any) -> CorrectionForm:
    # One form per pupil on the page: ids must differ from row to row.
    return CorrectionForm(data, auto_id=f"correct-{pupil_id}-%s", **kwargs)


@require_http_methods(["GET", "POST"])
@login_required
def lesson_attendance(request: HttpRequest, lesson_key: str) -> HttpResponse:
    user = _user(request)
    lesson = selectors.access_lesson_for_attendance(user=user, lesson_key=lesson_key)
    now = timezone.now()
    failed: CorrectionForm | None = None
    if request.method == "POST":
        failed = _correction_form(_digits(request.POST.get("pupil", "")), request.POST)
        if failed.is_valid():
            try:
                services.attendance_correct(
                    actor=user,
                    lesson=lesson,
                    pupil_id=failed.cleaned_data["pupil"],
                    status=failed.cleaned_data["status"],
                    reason=failed.cleaned_data["reason"],
                    now=now,
                )
            except ValidationError as error:
                failed.add_error(None, error)
            else:
                messages.success(request, _("The attendance was corrected."))
                return redirect(reverse("classrooms:lesson_attendance", args=[lesson.key]))
    attendance = selectors.lesson_attendance(lesson=lesson, now=now)
    rows = []
    for row in attendance.rows:
        form = None
        if row.is_pupil:
            if failed is not None and failed.data.get("pupil") == str(row.user.pk):
                form = failed
            else:
                form = _correction_form(
                    row.user.pk,
                    initial={"pupil": row.user.pk, "status": row.attendance.status},
                )
        rows.append((row, form))
    school = lesson.school
    return render(
        request,
        "classrooms/attendance/lesson.html",
        {
            "lesson": lesson,
            "school": school,
            "attendance": attendance,
            "rows": rows,
            "failed": failed,
            "timeline": lesson_timeline(attendance, zone=school.tzinfo),
            "now": now,
        },
        status=400 if failed is not None else 200,
    )


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def _local_iso(value: datetime | None, lesson: Lesson) -> str:
    if value is None:
        return ""
    return value.astimezone(lesson.school.tzinfo).isoformat(timespec="seconds")


@require_GET
@login_required
def lesson_attendance_csv(request: HttpRequest, lesson_key: str) -> HttpResponse:
    lesson = selectors.access_lesson_for_attendance(user=_user(request), lesson_key=lesson_key)
    attendance = selectors.lesson_attendance(lesson=lesson, now=timezone.now())
    day = lesson.starts_at.astimezone(lesson.school.tzinfo).date().isoformat()
    name = slugify(lesson.school_class.name) or "class"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="attendance-{name}-{day}.csv"'
    # A byte order mark, so that spreadsheets read the names as UTF-8.
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(
        [
            _("Name"),
            _("Email"),
            _("Status"),
            _("Correction reason"),
            _("First join"),
            _("Last leave"),
            _("Minutes connected"),
            _("Reconnects"),
        ]
    )
    for row in attendance.pupils:
        record = row.attendance
        writer.writerow(
            _cell(value)
            for value in (
                row.user.display_name,
                row.user.email,
                record.status,
                record.correction.reason if record.correction else "",
                _local_iso(record.first_join, lesson),
                _local_iso(record.last_leave, lesson),
                record.minutes,
                record.reconnects,
            )
        )
    return response


@require_GET
@login_required
def class_attendance(request: HttpRequest, class_id: int) -> HttpResponse:
    school_class = selectors.access_class_for_attendance(user=_user(request), class_id=class_id)
    now = timezone.now()
    terms = selectors.school_terms(school_class=school_class)
    raw = request.GET.get("term", "")
    term = selectors.term_for_attendance(
        school_class=school_class,
        terms=terms,
        term_id=_digits(raw) or None,
        today=now.astimezone(school_class.school.tzinfo).date(),
    )
    summary = selectors.class_term_attendance(school_class=school_class, term=term, now=now)
    return render(
        request,
        "classrooms/attendance/class.html",
        {
            "school_class": school_class,
            "school": school_class.school,
            "terms": terms,
            "summary": summary,
            "now": now,
        },
    )
