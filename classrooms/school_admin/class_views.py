"""The school admin's pages for classes and their rosters, terms and courses.

As in `views`, the school comes from `access_school_for_admin` (404 for anyone else) and every
class, term or course from an `access_*` selector scoped to that school.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from classrooms.models import EnrollmentRole, School, SchoolClass
from classrooms.school_admin import class_services as services
from classrooms.school_admin import selectors
from classrooms.school_admin.forms import (
    ClassFilterForm,
    ClassForm,
    CourseForm,
    RosterForm,
    SearchForm,
    TermForm,
)
from classrooms.school_admin.views import add_errors, admin_school, request_user, run_action


def _class_url(school_class: SchoolClass) -> str:
    return reverse("classrooms:school_admin:class", args=[school_class.school_id, school_class.pk])


def _form_page(request: HttpRequest, school: School, section: str, **context: Any) -> HttpResponse:
    return render(
        request,
        "classrooms/school_admin/form.html",
        {"school": school, "section": section, **context},
    )


# --- Classes --------------------------------------------------------------------------------------


@require_GET
@login_required
def classes(request: HttpRequest, school_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    filters = ClassFilterForm(request.GET)
    criteria = filters.cleaned_data if filters.is_valid() else {}
    page = selectors.classes_page(
        school=school,
        q=criteria.get("q", ""),
        status=criteria.get("status", ""),
        page=request.GET.get("page", 1),
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "classrooms/school_admin/classes.html",
        {
            "school": school,
            "section": "classes",
            "filters": filters,
            "page": page,
            "query": query.urlencode(),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def class_create(request: HttpRequest, school_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    # Most classes are made for the newest term: offer it first.
    form = ClassForm(
        request.POST or None,
        initial={"term": selectors.school_terms(school=school).first()},
        school=school,
    )
    if request.method == "POST" and form.is_valid():
        try:
            school_class = services.class_create(
                school=school,
                actor=request_user(request),
                name=form.cleaned_data["name"],
                term_id=form.cleaned_data["term"].pk,
                course_id=form.cleaned_data["course"].pk,
            )
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(
                request, _("The class %(name)s was created.") % {"name": school_class.name}
            )
            return redirect(_class_url(school_class))
    return _form_page(
        request,
        school,
        "classes",
        form=form,
        title=_("New class"),
        submit=_("Create the class"),
        cancel_url=reverse("classrooms:school_admin:classes", args=[school.pk]),
        empty_hint=""
        if selectors.school_terms(school=school).exists()
        and selectors.school_courses(school=school).exists()
        else _("Add a term and a course first, on the Terms and courses page."),
    )


@require_GET
@login_required
def class_detail(request: HttpRequest, school_id: int, class_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    school_class = selectors.access_class_for_admin(school=school, class_id=class_id)
    roster = selectors.class_roster_for_admin(school_class=school_class)
    search = SearchForm(request.GET)
    q = search.cleaned_data["q"] if search.is_valid() else ""
    archived = school_class.archived_at is not None
    return render(
        request,
        "classrooms/school_admin/class_detail.html",
        {
            "school": school,
            "section": "classes",
            "school_class": school_class,
            "archived": archived,
            "teachers": [e for e in roster if e.role == EnrollmentRole.TEACHER],
            "pupils": [e for e in roster if e.role == EnrollmentRole.PUPIL],
            "search": search,
            "q": q,
            "candidate_pupils": None
            if archived
            else selectors.candidates(
                queryset=selectors.enrollable(school_class=school_class, role=EnrollmentRole.PUPIL),
                q=q,
            ),
            "candidate_teachers": None
            if archived
            else selectors.candidates(
                queryset=selectors.enrollable(
                    school_class=school_class, role=EnrollmentRole.TEACHER
                )
            ),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def class_edit(request: HttpRequest, school_id: int, class_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    school_class = selectors.access_class_for_admin(school=school, class_id=class_id)
    initial = {"name": school_class.name, "term": school_class.term, "course": school_class.course}
    form = ClassForm(request.POST or None, initial=initial, school=school)
    if request.method == "POST" and form.is_valid():
        try:
            services.class_update(
                school=school,
                actor=request_user(request),
                school_class=school_class,
                name=form.cleaned_data["name"],
                term_id=form.cleaned_data["term"].pk,
                course_id=form.cleaned_data["course"].pk,
            )
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect(_class_url(school_class))
    return _form_page(
        request,
        school,
        "classes",
        form=form,
        title=_("Edit %(name)s") % {"name": school_class.name},
        submit=_("Save"),
        cancel_url=_class_url(school_class),
    )


@require_POST
@login_required
def class_archive(request: HttpRequest, school_id: int, class_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    school_class = selectors.access_class_for_admin(school=school, class_id=class_id)
    run_action(
        request,
        lambda: services.class_archive(
            school=school, actor=request_user(request), school_class=school_class
        ),
        _("%(name)s was archived.") % {"name": school_class.name},
    )
    return redirect(_class_url(school_class))


@require_POST
@login_required
def class_restore(request: HttpRequest, school_id: int, class_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    school_class = selectors.access_class_for_admin(school=school, class_id=class_id)
    run_action(
        request,
        lambda: services.class_restore(
            school=school, actor=request_user(request), school_class=school_class
        ),
        _("%(name)s was restored.") % {"name": school_class.name},
    )
    return redirect(_class_url(school_class))


def _roster_change(
    request: HttpRequest, school_id: int, class_id: int, role: str | None
) -> HttpResponse:
    """Enrol people in `role`, or take people off the roster when `role` is None."""
    school = admin_school(request, school_id)
    school_class = selectors.access_class_for_admin(school=school, class_id=class_id)
    people = (
        selectors.enrolled(school_class=school_class)
        if role is None
        else selectors.enrollable(school_class=school_class, role=role)
    )
    form = RosterForm(request.POST, people=people)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(_class_url(school_class))
    user_ids = [user.pk for user in form.cleaned_data["users"]]
    actor = request_user(request)
    try:
        if role is None:
            count = services.enrollments_remove(
                school=school, actor=actor, school_class=school_class, user_ids=user_ids
            )
            message = ngettext(
                "%(n)d person was taken off the roster.",
                "%(n)d people were taken off the roster.",
                count,
            )
        else:
            count = services.enrollments_add(
                school=school, actor=actor, school_class=school_class, role=role, user_ids=user_ids
            )
            message = (
                ngettext("%(n)d pupil was enrolled.", "%(n)d pupils were enrolled.", count)
                if role == EnrollmentRole.PUPIL
                else ngettext("%(n)d teacher was assigned.", "%(n)d teachers were assigned.", count)
            )
    except ValidationError as error:
        for text in error.messages:
            messages.error(request, text)
    else:
        messages.success(request, message % {"n": count})
    return redirect(_class_url(school_class))


@require_POST
@login_required
def class_enrol_pupils(request: HttpRequest, school_id: int, class_id: int) -> HttpResponse:
    return _roster_change(request, school_id, class_id, EnrollmentRole.PUPIL)


@require_POST
@login_required
def class_assign_teachers(request: HttpRequest, school_id: int, class_id: int) -> HttpResponse:
    return _roster_change(request, school_id, class_id, EnrollmentRole.TEACHER)


@require_POST
@login_required
def class_unenrol(request: HttpRequest, school_id: int, class_id: int) -> HttpResponse:
    return _roster_change(request, school_id, class_id, None)


# --- Terms and courses ----------------------------------------------------------------------------


@require_GET
@login_required
def terms_and_courses(request: HttpRequest, school_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    return render(
        request,
        "classrooms/school_admin/terms.html",
        {
            "school": school,
            "section": "terms",
            "terms": selectors.school_terms(school=school),
            "courses": selectors.school_courses(school=school),
        },
    )


def _terms_url(school: School) -> str:
    return reverse("classrooms:school_admin:terms", args=[school.pk])


@require_http_methods(["GET", "POST"])
@login_required
def term_form(request: HttpRequest, school_id: int, term_id: int | None = None) -> HttpResponse:
    school = admin_school(request, school_id)
    term = (
        None if term_id is None else selectors.access_term_for_admin(school=school, term_id=term_id)
    )
    initial = (
        {}
        if term is None
        else {"name": term.name, "starts_on": term.starts_on, "ends_on": term.ends_on}
    )
    form = TermForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        actor = request_user(request)
        try:
            if term is None:
                services.term_create(school=school, actor=actor, **form.cleaned_data)
            else:
                services.term_update(school=school, actor=actor, term=term, **form.cleaned_data)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect(_terms_url(school))
    return _form_page(
        request,
        school,
        "terms",
        form=form,
        title=_("New term") if term is None else _("Edit %(name)s") % {"name": term.name},
        submit=_("Create the term") if term is None else _("Save"),
        cancel_url=_terms_url(school),
    )


@require_http_methods(["GET", "POST"])
@login_required
def course_form(request: HttpRequest, school_id: int, course_id: int | None = None) -> HttpResponse:
    school = admin_school(request, school_id)
    course = (
        None
        if course_id is None
        else selectors.access_course_for_admin(school=school, course_id=course_id)
    )
    initial = {} if course is None else {"title": course.title, "code": course.code}
    form = CourseForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        actor = request_user(request)
        try:
            if course is None:
                services.course_create(school=school, actor=actor, **form.cleaned_data)
            else:
                services.course_update(
                    school=school, actor=actor, course=course, **form.cleaned_data
                )
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect(_terms_url(school))
    return _form_page(
        request,
        school,
        "terms",
        form=form,
        title=_("New course") if course is None else _("Edit %(name)s") % {"name": course.title},
        submit=_("Create the course") if course is None else _("Save"),
        cancel_url=_terms_url(school),
    )
