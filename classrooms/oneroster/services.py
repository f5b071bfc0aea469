"""Roster import and export: the writes that pages, Celery tasks and commands call.

Upload -> `roster_import_create` (refuses unsafe bundles, stores a canonical zip, queues the check)
-> `roster_import_validate` (the task: plans against the school, reports progress, ends VALID,
INVALID or FAILED) -> `roster_import_apply` (re-plans against the school as it is now and writes
all or nothing). `roster_import_bundle_report` is the same path in one call, for the command line.
`roster_export` writes the school back out as OneRoster 1.2.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from classrooms.audit import audit_record
from classrooms.models import AuditAction, RosterImport, RosterImportState, School
from classrooms.oneroster.apply import apply_changes
from classrooms.oneroster.bundle import Bundle, read_uploaded, read_zip
from classrooms.oneroster.exceptions import RosterBundleRefused, RosterImportNotApplicable
from classrooms.oneroster.export import roster_zip
from classrooms.oneroster.plan import Progress, plan_bundle
from classrooms.oneroster.report import Report

logger = logging.getLogger(__name__)

FAILED_MESSAGE = (
    "Something went wrong on our side while checking this roster. Nothing was changed; "
    "try again, and tell your operator if it happens again."
)


def _actor_id(actor: User | None) -> int | None:
    return actor.pk if actor is not None else None


@transaction.atomic
def roster_import_create(
    *, school: School, actor: User | None, files: Sequence[tuple[str, bytes]]
) -> RosterImport:
    """Store an uploaded bundle and queue its check.

    Raises `RosterBundleRefused` (nothing stored) when the upload is too large or unsafe. The
    check runs in a Celery task once this transaction commits, so the worker sees the row.
    """
    bundle = read_uploaded(files)
    roster_import = RosterImport.objects.create(
        school=school,
        created_by=actor,
        state=RosterImportState.VALIDATING,
        file_names=list(bundle.file_names),
        bundle=bundle.to_zip(),
        size_bytes=bundle.size_bytes,
    )
    audit_record(
        school_id=school.pk,
        actor_id=_actor_id(actor),
        action=AuditAction.IMPORT_UPLOADED,
        target_type="roster_import",
        target_id=roster_import.pk,
        target_label=", ".join(bundle.file_names),
        details={"file_names": list(bundle.file_names), "size_bytes": bundle.size_bytes},
    )
    from classrooms.tasks import roster_import_validate_task

    pk = roster_import.pk
    transaction.on_commit(lambda: roster_import_validate_task.delay(pk))
    return roster_import


def _stored_bundle(roster_import: RosterImport) -> Bundle:
    return read_zip(bytes(roster_import.bundle))


def roster_import_validate(*, roster_import_id: int) -> None:
    """Check a stored bundle against its school; the body of the validation task.

    Not atomic on purpose: progress is written as it goes, with single-row updates a polling page
    sees at once. Runs only from VALIDATING (a redelivered task finds the work done and returns);
    any unexpected error ends in FAILED, never a stuck VALIDATING.
    """
    rows = RosterImport.objects.filter(pk=roster_import_id, state=RosterImportState.VALIDATING)
    roster_import = rows.select_related("school").first()
    if roster_import is None:
        return

    def progress(percent: int) -> None:
        rows.update(progress=min(percent, 100))

    try:
        progress(5)
        report = _report_of(roster_import.school, _stored_bundle(roster_import), progress)
    except Exception:
        logger.exception("roster import %s failed while validating", roster_import_id)
        failed = Report.refused(FAILED_MESSAGE, file_names=tuple(roster_import.file_names))
        rows.update(state=RosterImportState.FAILED, progress=100, report=failed.as_json())
        return
    state = RosterImportState.VALID if report.valid else RosterImportState.INVALID
    rows.update(state=state, progress=100, report=report.as_json())


def _report_of(school: School, bundle: Bundle, progress: Progress) -> Report:
    return plan_bundle(school=school, bundle=bundle, progress=progress).report


def _apply_bundle(*, school: School, bundle: Bundle, actor: User | None, source: str) -> Report:
    """Plan and, if valid, write the changes and their audit event. Caller holds the transaction."""
    plan = plan_bundle(school=school, bundle=bundle)
    if not plan.report.valid:
        return plan.report
    now = timezone.now()
    apply_changes(school=school, changes=plan.changes, now=now)
    if school.org_sourced_id != plan.org_sourced_id:
        school.org_sourced_id = plan.org_sourced_id
        school.save(update_fields=["org_sourced_id"])
    counts = plan.report.as_json()["counts"]
    details: dict[str, Any] = {
        "source": source,
        "file_names": list(bundle.file_names),
        "version": plan.report.version,
        "mode": plan.report.mode,
        "counts": counts,
        "org_sourced_id": plan.org_sourced_id,
        "changed_sourced_ids_sample": list(plan.changed_sourced_ids),
    }
    audit_record(
        school_id=school.pk,
        actor_id=_actor_id(actor),
        action=AuditAction.IMPORT_APPLIED,
        target_type="school",
        target_id=school.pk,
        target_label=", ".join(bundle.file_names),
        details=details,
    )
    return plan.report


@transaction.atomic
def roster_import_apply(*, roster_import: RosterImport, actor: User | None) -> RosterImport:
    """Apply a validated import, all or nothing, against the school as it is now.

    Raises `RosterImportNotApplicable` unless the import is VALID. The school may have changed
    since validation, so the bundle is planned again under the row's lock; if that plan has
    errors nothing of the roster is written and the import goes back to INVALID with the new
    report.
    """
    locked = (
        RosterImport.objects.select_for_update()
        .select_related("school")
        .filter(pk=roster_import.pk)
        .first()
    )
    if locked is None or locked.state != RosterImportState.VALID:
        raise RosterImportNotApplicable
    bundle = _stored_bundle(locked)
    source = f"roster import {locked.pk}"
    report = _apply_bundle(school=locked.school, bundle=bundle, actor=actor, source=source)
    locked.report = report.as_json()
    if report.valid:
        locked.state = RosterImportState.APPLIED
        locked.applied_at = timezone.now()
        locked.applied_by = actor
    else:
        locked.state = RosterImportState.INVALID
    locked.save(update_fields=["report", "state", "applied_at", "applied_by"])
    return locked


def roster_import_bundle_report(
    *, school: School, files: Sequence[tuple[str, bytes]] | Bundle, apply: bool, actor: User | None
) -> Report:
    """Check a bundle, and with `apply` write it: the command line's path.

    Without `apply` nothing is written, not even an audit event. With it, the bundle is applied
    in one transaction, kept as an applied RosterImport (so the school's import history shows
    it), and recorded in the audit log (actor None: the system). A refused bundle gives a
    report with one error rather than an exception.
    """
    try:
        bundle = files if isinstance(files, Bundle) else read_uploaded(files)
    except RosterBundleRefused as refused:
        return Report.refused(refused.message)
    if not apply:
        return plan_bundle(school=school, bundle=bundle).report
    with transaction.atomic():
        report = _apply_bundle(school=school, bundle=bundle, actor=actor, source="command line")
        if report.valid:
            RosterImport.objects.create(
                school=school,
                created_by=actor,
                state=RosterImportState.APPLIED,
                progress=100,
                file_names=list(bundle.file_names),
                bundle=bundle.to_zip(),
                size_bytes=bundle.size_bytes,
                report=report.as_json(),
                applied_at=timezone.now(),
                applied_by=actor,
            )
    return report


@transaction.atomic
def roster_export(*, school: School, actor: User | None) -> bytes:
    """The school's roster as a OneRoster 1.2 zip; the download is recorded in the audit log."""
    data = roster_zip(school)
    audit_record(
        school_id=school.pk,
        actor_id=_actor_id(actor),
        action=AuditAction.EXPORT_DOWNLOADED,
        target_type="school",
        target_id=school.pk,
        target_label=school.name,
        details={"size_bytes": len(data)},
    )
    return data
