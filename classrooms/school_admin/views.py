"""The school admin's pages: the dashboard, people and their guardians, invitations, the audit
log. Classes, terms and courses are in `class_views`.

Every view first resolves the school through `access_school_for_admin`, so anyone but an active
admin of that school gets the same 404 as for a school that does not exist. Views parse input,
call one selector or service and render; changes are POST-only and answer with a redirect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_stubs_ext import StrOrPromise

from accounts.models import Membership, Role, User
from classrooms import selectors as school_selectors
from classrooms.exceptions import NotFound
from classrooms.models import AuditAction, School
from classrooms.oneroster.report import RECORD_LABELS
from classrooms.school_admin import invitations, selectors, services
from classrooms.school_admin.forms import (
    AuditFilterForm,
    PeopleFilterForm,
    PersonForm,
    PupilLinkForm,
    SearchForm,
)


def request_user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User), "login_required lets only real users through"  # noqa: S101
    return user


def admin_school(request: HttpRequest, school_id: int) -> School:
    return school_selectors.access_school_for_admin(user=request_user(request), school_id=school_id)


def add_errors(form: Form, error: ValidationError) -> None:
    """Put a service's refusal on the form: on its field when the form has one."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


def run_action(request: HttpRequest, action: Callable[[], object], success: str) -> None:
    """Run a service for a POST-and-redirect view and say how it went."""
    try:
        action()
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, success)


def site_root(request: HttpRequest) -> str:
    return request.build_absolute_uri("/")


def _person_url(school: School, user_id: int) -> str:
    return reverse("classrooms:school_admin:person", args=[school.pk, user_id])


# --- The school -----------------------------------------------------------------------------------


@require_GET
@login_required
def schools(request: HttpRequest) -> HttpResponse:
    """The schools the user runs: straight to the only one, or a choice."""
    user = request_user(request)
    admin_of = list(
        School.objects.filter(
            id__in=Membership.objects.active()
            .filter(user=user, role=Role.ADMIN)
            .values("school_id")
        ).order_by("name")
    )
    if not admin_of:
        raise NotFound
    if len(admin_of) == 1:
        return redirect("classrooms:school_admin:dashboard", admin_of[0].pk)
    return render(request, "classrooms/school_admin/schools.html", {"schools": admin_of})


@require_GET
@login_required
def dashboard(request: HttpRequest, school_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    return render(
        request,
        "classrooms/school_admin/dashboard.html",
        {
            "school": school,
            "section": "dashboard",
            "dashboard": selectors.school_dashboard(school=school),
        },
    )


# --- People ---------------------------------------------------------------------------------------


@require_GET
@login_required
def people(request: HttpRequest, school_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    filters = PeopleFilterForm(request.GET)
    criteria = filters.cleaned_data if filters.is_valid() else {}
    found = selectors.people_page(
        school=school,
        now=timezone.now(),
        q=criteria.get("q", ""),
        role=criteria.get("role", ""),
        status=criteria.get("status", ""),
        page=request.GET.get("page", 1),
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "classrooms/school_admin/people.html",
        {
            "school": school,
            "section": "people",
            "filters": filters,
            "page": found.page,
            "rows": found.rows,
            "query": query.urlencode(),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def person_create(request: HttpRequest, school_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    form = PersonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.person_create(
                school=school, actor=request_user(request), **form.cleaned_data
            )
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(
                request, _("%(name)s was added to the school.") % {"name": user.display_name}
            )
            return redirect(_person_url(school, user.pk))
    return render(
        request,
        "classrooms/school_admin/form.html",
        {
            "school": school,
            "section": "people",
            "form": form,
            "title": _("Add a person"),
            "submit": _("Add"),
            "cancel_url": reverse("classrooms:school_admin:people", args=[school.pk]),
        },
    )


@require_GET
@login_required
def person_detail(request: HttpRequest, school_id: int, user_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    person = selectors.access_person_for_admin(school=school, user_id=user_id)
    detail = selectors.person_detail(school=school, person=person)
    search = SearchForm(request.GET)
    pupils = None
    if Role.GUARDIAN in person.roles and not person.deactivated:
        q = search.cleaned_data["q"] if search.is_valid() else ""
        pupils = selectors.candidates(
            queryset=selectors.pupils_to_link(school=school, guardian=person.user), q=q, limit=20
        )
    return render(
        request,
        "classrooms/school_admin/person_detail.html",
        {
            "school": school,
            "section": "people",
            "person": person,
            "detail": detail,
            "search": search,
            "pupils": pupils,
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def person_edit(request: HttpRequest, school_id: int, user_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    person = selectors.access_person_for_admin(school=school, user_id=user_id)
    user = person.user
    locked = selectors.is_managed_elsewhere(school=school, user=user)
    initial = {
        "email": user.email,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "roles": list(person.roles),
    }
    form = PersonForm(request.POST or None, initial=initial, identity_locked=locked)
    if request.method == "POST" and form.is_valid():
        try:
            services.person_update(
                school=school, actor=request_user(request), user=user, **form.cleaned_data
            )
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect(_person_url(school, user.pk))
    return render(
        request,
        "classrooms/school_admin/form.html",
        {
            "school": school,
            "section": "people",
            "form": form,
            "title": _("Edit %(name)s") % {"name": user.display_name},
            "submit": _("Save"),
            "cancel_url": _person_url(school, user.pk),
        },
    )


def _person_action(
    request: HttpRequest,
    school_id: int,
    user_id: int,
    service: Callable[..., object],
    success: str,
) -> HttpResponseRedirect:
    school = admin_school(request, school_id)
    user = selectors.access_person_for_admin(school=school, user_id=user_id).user
    run_action(
        request,
        lambda: service(school=school, actor=request_user(request), user=user),
        success % {"name": user.display_name},
    )
    return redirect(_person_url(school, user.pk))


@require_POST
@login_required
def person_deactivate(request: HttpRequest, school_id: int, user_id: int) -> HttpResponse:
    return _person_action(
        request, school_id, user_id, services.person_deactivate, _("%(name)s was deactivated.")
    )


@require_POST
@login_required
def person_reactivate(request: HttpRequest, school_id: int, user_id: int) -> HttpResponse:
    return _person_action(
        request, school_id, user_id, services.person_reactivate, _("%(name)s was reactivated.")
    )


@require_POST
@login_required
def person_invite(request: HttpRequest, school_id: int, user_id: int) -> HttpResponse:
    root = site_root(request)
    return _person_action(
        request,
        school_id,
        user_id,
        lambda **kwargs: invitations.invitation_send(base_url=root, **kwargs),
        _("An invitation was sent to %(name)s."),
    )


@require_POST
@login_required
def invite_missing(request: HttpRequest, school_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    count = invitations.invitations_send_missing(
        school=school, actor=request_user(request), base_url=site_root(request)
    )
    if count:
        messages.success(
            request,
            ngettext("%(n)d invitation was sent.", "%(n)d invitations were sent.", count)
            % {"n": count},
        )
    else:
        messages.info(request, _("Everyone already has a password or a link that still works."))
    return redirect("classrooms:school_admin:people", school.pk)


@require_POST
@login_required
def guardian_link(request: HttpRequest, school_id: int, user_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    guardian = selectors.access_person_for_admin(school=school, user_id=user_id).user
    form = PupilLinkForm(
        request.POST, pupils=selectors.pupils_to_link(school=school, guardian=guardian)
    )
    if not form.is_valid():
        messages.error(request, _("Choose an active pupil of this school."))
    else:
        pupil: User = form.cleaned_data["pupil"]
        run_action(
            request,
            lambda: services.guardian_link(
                school=school,
                actor=request_user(request),
                guardian_id=guardian.pk,
                pupil_id=pupil.pk,
            ),
            _("%(guardian)s now follows %(pupil)s.")
            % {"guardian": guardian.display_name, "pupil": pupil.display_name},
        )
    return redirect(_person_url(school, guardian.pk))


@require_POST
@login_required
def guardian_unlink(
    request: HttpRequest, school_id: int, user_id: int, pupil_id: int
) -> HttpResponse:
    school = admin_school(request, school_id)
    guardian = selectors.access_person_for_admin(school=school, user_id=user_id).user
    run_action(
        request,
        lambda: services.guardian_unlink(
            school=school, actor=request_user(request), guardian_id=guardian.pk, pupil_id=pupil_id
        ),
        _("The link was removed."),
    )
    return redirect(_person_url(school, guardian.pk))


# --- Audit log ------------------------------------------------------------------------------------

DETAIL_LABELS: dict[str, StrOrPromise] = {
    "roles": gettext_lazy("Roles"),
    "role": gettext_lazy("Role"),
    "user": gettext_lazy("Person"),
    "pupil": gettext_lazy("Pupil"),
    "email": gettext_lazy("Email"),
    "expires_at": gettext_lazy("Link valid until"),
    "term": gettext_lazy("Term"),
    "course": gettext_lazy("Course"),
    "code": gettext_lazy("Code"),
    "name": gettext_lazy("Name"),
    "title": gettext_lazy("Title"),
    "given_name": gettext_lazy("Given name"),
    "family_name": gettext_lazy("Family name"),
    "starts_on": gettext_lazy("First day"),
    "ends_on": gettext_lazy("Last day"),
    "existing_account": gettext_lazy("Account already existed"),
    "counts": gettext_lazy("Changes"),
    "file_names": gettext_lazy("Files"),
    "size_bytes": gettext_lazy("Size (bytes)"),
    "version": gettext_lazy("OneRoster version"),
    "mode": gettext_lazy("Mode"),
    "source": gettext_lazy("Source"),
    "changed_sourced_ids_sample": gettext_lazy("Some changed sourcedIds"),
}
COUNT_WORDS = {
    "create": gettext_lazy("%(n)s created"),
    "update": gettext_lazy("%(n)s updated"),
    "deactivate": gettext_lazy("%(n)s deactivated"),
}


def _import_counts(counts: dict[str, Any]) -> list[tuple[str, str]]:
    """A roster import's counts as one line per kind of record that changed."""
    lines = []
    for kind, row in counts.items():
        if not isinstance(row, dict):
            continue
        changes = [
            str(words) % {"n": row[key]} for key, words in COUNT_WORDS.items() if row.get(key)
        ]
        if changes:
            lines.append((str(RECORD_LABELS.get(kind, kind)), ", ".join(changes)))
    return lines or [(str(DETAIL_LABELS["counts"]), _("no change"))]


def _detail_value(value: object) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(_detail_value(item) for item in value)
    if isinstance(value, str) and value in Role.values:
        return str(Role(value).label)
    return str(value)


def audit_details(details: dict[str, Any]) -> list[tuple[str, str]]:
    """An event's details as (label, text) lines; ids stay out, changes read "old → new"."""
    lines = []
    for key, value in details.items():
        if key.endswith("_id") or (key == "existing_account" and not value):
            continue
        if key == "counts" and isinstance(value, dict):
            lines.extend(_import_counts(value))
            continue
        if key == "changed" and isinstance(value, dict):
            for field, change in value.items():
                old, new = change if isinstance(change, list) and len(change) == 2 else ("", change)
                label = DETAIL_LABELS.get(field, field)
                lines.append((str(label), f"{_detail_value(old)} → {_detail_value(new)}"))
            continue
        lines.append((str(DETAIL_LABELS.get(key, key)), _detail_value(value)))
    return lines


@require_GET
@login_required
def audit_log(request: HttpRequest, school_id: int) -> HttpResponse:
    school = admin_school(request, school_id)
    filters = AuditFilterForm(request.GET, actors=selectors.audit_actors(school=school))
    criteria = filters.cleaned_data if filters.is_valid() else {}
    actor = criteria.get("actor")
    events = selectors.audit_events_page(
        school=school,
        action=criteria.get("action", ""),
        actor_id=actor.pk if actor is not None else None,
        since=criteria.get("since"),
        until=criteria.get("until"),
        page=request.GET.get("page", 1),
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "classrooms/school_admin/audit.html",
        {
            "school": school,
            "section": "audit",
            "filters": filters,
            "page": events,
            "rows": [
                {
                    "event": event,
                    "action": AuditAction(event.action).label
                    if event.action in AuditAction.values
                    else event.action,
                    "details": audit_details(event.details),
                }
                for event in events
            ],
            "query": query.urlencode(),
        },
    )
