"""A school admin's roster exchange pages: upload a OneRoster bundle, watch it being checked,
read the preview, apply it, and export the school's roster.

Views parse the request, call one selector and/or one service of `classrooms.oneroster`, and
render. Validation runs in a Celery task; the page polls a small JSON status while it runs.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from classrooms.exceptions import NotFound
from classrooms.models import RosterImport, RosterImportState, School
from classrooms.oneroster import services as oneroster
from classrooms.oneroster.exceptions import RosterBundleRefused, RosterImportNotApplicable
from classrooms.oneroster.report import RECORD_LABELS
from classrooms.selectors import access_school_for_admin

RECENT_IMPORTS = 20


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field: a zip, or the bundle's CSV files chosen together."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".zip,.csv"}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile[Any]]:
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in files if item]


class RosterUploadForm(forms.Form):
    bundle = MultipleFileField(
        label=gettext_lazy("OneRoster bundle"),
        help_text=gettext_lazy(
            "A .zip exported by your school information system, or its CSV files "
            "(manifest.csv, orgs.csv, users.csv, ...) selected together."
        ),
    )


def _admin(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):
        raise NotFound
    return user


def access_roster_import_for_admin(*, user: User, school_id: int, import_id: int) -> RosterImport:
    """One import of a school the user runs; not found otherwise, like a missing row."""
    school = access_school_for_admin(user=user, school_id=school_id)
    try:
        return RosterImport.objects.select_related("school", "created_by", "applied_by").get(
            school=school, pk=import_id
        )
    except RosterImport.DoesNotExist:
        raise NotFound from None


def _preview_rows(counts: dict[str, Any]) -> list[tuple[str, Any]]:
    """The report's counts as (label, row) in the preview's order; unknown names last, as is."""
    rows = [(str(label), counts[name]) for name, label in RECORD_LABELS.items() if name in counts]
    return rows + [(name, row) for name, row in counts.items() if name not in RECORD_LABELS]


def _roster_page(
    request: HttpRequest, school: School, form: RosterUploadForm, status: int = 200
) -> HttpResponse:
    imports = (
        RosterImport.objects.filter(school=school)
        .select_related("created_by")
        .defer("bundle")
        .order_by("-created_at")[:RECENT_IMPORTS]
    )
    return render(
        request,
        "classrooms/roster/index.html",
        {"school": school, "section": "roster", "form": form, "imports": imports},
        status=status,
    )


@require_GET
@login_required
def roster_index(request: HttpRequest, school_id: int) -> HttpResponse:
    school = access_school_for_admin(user=_admin(request), school_id=school_id)
    return _roster_page(request, school, RosterUploadForm())


@require_POST
@login_required
def roster_upload(request: HttpRequest, school_id: int) -> HttpResponse:
    user = _admin(request)
    school = access_school_for_admin(user=user, school_id=school_id)
    form = RosterUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _roster_page(request, school, form, status=400)
    files = [(upload.name or "bundle", upload.read()) for upload in form.cleaned_data["bundle"]]
    try:
        roster_import = oneroster.roster_import_create(school=school, actor=user, files=files)
    except RosterBundleRefused as refusal:
        form.add_error("bundle", str(refusal))
        return _roster_page(request, school, form, status=400)
    return redirect("classrooms:roster-import", school_id=school.pk, import_id=roster_import.pk)


@require_GET
@login_required
def roster_import_detail(request: HttpRequest, school_id: int, import_id: int) -> HttpResponse:
    roster_import = access_roster_import_for_admin(
        user=_admin(request), school_id=school_id, import_id=import_id
    )
    report = roster_import.report or {}
    return render(
        request,
        "classrooms/roster/import.html",
        {
            "school": roster_import.school,
            "section": "roster",
            "roster_import": roster_import,
            "report": report,
            "counts": _preview_rows(report.get("counts") or {}),
            "errors": report.get("errors") or [],
            "checking": roster_import.state == RosterImportState.VALIDATING,
            "can_apply": roster_import.state == RosterImportState.VALID,
        },
    )


@require_GET
@login_required
def roster_import_status(request: HttpRequest, school_id: int, import_id: int) -> JsonResponse:
    roster_import = access_roster_import_for_admin(
        user=_admin(request), school_id=school_id, import_id=import_id
    )
    return JsonResponse({"state": roster_import.state, "progress": roster_import.progress})


@require_POST
@login_required
def roster_import_apply(request: HttpRequest, school_id: int, import_id: int) -> HttpResponse:
    user = _admin(request)
    roster_import = access_roster_import_for_admin(
        user=user, school_id=school_id, import_id=import_id
    )
    try:
        roster_import = oneroster.roster_import_apply(roster_import=roster_import, actor=user)
    except RosterImportNotApplicable:
        messages.error(
            request, _("This import cannot be applied: it is not ready, or already done.")
        )
    else:
        if roster_import.state == RosterImportState.APPLIED:
            messages.success(request, _("The roster import was applied."))
        else:
            messages.error(
                request,
                _(
                    "The school changed since the check, and the bundle no longer fits. Nothing "
                    "was written; read the problems below."
                ),
            )
    return redirect("classrooms:roster-import", school_id=school_id, import_id=import_id)


@require_POST
@login_required
def roster_export(request: HttpRequest, school_id: int) -> HttpResponse:
    user = _admin(request)
    school = access_school_for_admin(user=user, school_id=school_id)
    archive = oneroster.roster_export(school=school, actor=user)
    stamp = timezone.localtime(timezone.now(), school.tzinfo).strftime("%Y%m%d-%H%M")
    response = HttpResponse(archive, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{school.slug}-oneroster-{stamp}.zip"'
    return response
