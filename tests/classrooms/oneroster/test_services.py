"""The upload -> check -> apply path the pages use: states, progress, re-planning, audit."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Membership, Role
from classrooms.models import AuditAction, AuditEvent, RosterImport, RosterImportState, Term
from classrooms.oneroster import services
from classrooms.oneroster.exceptions import RosterImportNotApplicable
from classrooms.oneroster.services import (
    roster_import_apply,
    roster_import_create,
    roster_import_validate,
)
from classrooms.tasks import roster_import_validate_task
from tests.classrooms.oneroster.builder import RosterBuilder
from tests.classrooms.oneroster.conftest import row_counts
from tests.factories import admin_of, member

pytestmark = pytest.mark.django_db


def uploaded(school, builder: RosterBuilder, actor=None) -> RosterImport:
    return roster_import_create(school=school, actor=actor, files=builder.files())


def test_an_upload_is_stored_as_a_canonical_zip_recorded_and_queued(
    school, django_capture_on_commit_callbacks
):
    admin = admin_of(school)
    builder = RosterBuilder.school()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        roster_import = roster_import_create(
            school=school, actor=admin, files=[("roster.zip", builder.zip("export/"))]
        )

    assert len(callbacks) == 1
    roster_import.refresh_from_db()
    assert roster_import.state == RosterImportState.VALIDATING
    assert roster_import.file_names[:2] == ["manifest.csv", "orgs.csv"]
    assert roster_import.size_bytes == sum(len(data) for _, data in builder.files())
    assert bytes(roster_import.bundle[:2]) == b"PK"
    event = AuditEvent.objects.get(action=AuditAction.IMPORT_UPLOADED)
    assert event.actor == admin
    assert event.details["size_bytes"] == roster_import.size_bytes


def test_the_task_writes_progress_as_it_goes_and_ends_valid(school):
    roster_import = uploaded(school, RosterBuilder.school())

    with CaptureQueriesContext(connection) as queries:
        roster_import_validate_task.apply(args=(roster_import.pk,))

    progress_writes = [
        q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "progress" in q["sql"]
    ]
    assert len(progress_writes) >= 4
    roster_import.refresh_from_db()
    assert roster_import.state == RosterImportState.VALID
    assert roster_import.progress == 100
    assert roster_import.report["valid"] is True
    assert roster_import.report["counts"]["users"]["create"] == 5
    # Checking writes nothing of the roster.
    assert not Membership.objects.filter(school=school).exists()


def test_the_task_ends_invalid_with_the_report_when_the_bundle_has_errors(school):
    builder = RosterBuilder.school()
    builder.row("users.csv", "u-pupil3")["role"] = ""
    roster_import = uploaded(school, builder)

    roster_import_validate(roster_import_id=roster_import.pk)

    roster_import.refresh_from_db()
    assert roster_import.state == RosterImportState.INVALID
    assert roster_import.report["errors"][0]["line"] == 5


def test_an_unexpected_error_ends_failed_not_stuck_validating(school, monkeypatch):
    roster_import = uploaded(school, RosterBuilder.school())

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "plan_bundle", broken)
    roster_import_validate(roster_import_id=roster_import.pk)

    roster_import.refresh_from_db()
    assert roster_import.state == RosterImportState.FAILED
    assert roster_import.report["valid"] is False
    assert roster_import.report["errors"][0]["message"] == services.FAILED_MESSAGE


def test_applying_a_valid_import_writes_it_once_and_records_who(school):
    admin = admin_of(school)
    roster_import = uploaded(school, RosterBuilder.school(), actor=admin)
    roster_import_validate(roster_import_id=roster_import.pk)
    roster_import.refresh_from_db()

    applied = roster_import_apply(roster_import=roster_import, actor=admin)

    assert applied.state == RosterImportState.APPLIED
    assert applied.applied_by == admin
    assert applied.applied_at is not None
    assert Membership.objects.filter(school=school, role=Role.PUPIL).count() == 3
    events = AuditEvent.objects.filter(school=school, action=AuditAction.IMPORT_APPLIED)
    assert events.count() == 1
    assert events[0].actor == admin
    assert events[0].details["counts"]["enrollments"]["create"] == 5
    assert events[0].details["file_names"] == roster_import.file_names


@pytest.mark.parametrize(
    "state",
    [
        RosterImportState.VALIDATING,
        RosterImportState.INVALID,
        RosterImportState.APPLIED,
        RosterImportState.FAILED,
    ],
)
def test_only_a_valid_import_can_be_applied(school, state):
    roster_import = uploaded(school, RosterBuilder.school())
    RosterImport.objects.filter(pk=roster_import.pk).update(state=state)
    before = row_counts()

    with pytest.raises(RosterImportNotApplicable):
        roster_import_apply(roster_import=roster_import, actor=None)

    assert row_counts() == before


def test_apply_plans_again_and_writes_nothing_if_the_school_changed(school):
    """Between check and apply, someone took a pupil's email in this school by hand."""
    roster_import = uploaded(school, RosterBuilder.school())
    roster_import_validate(roster_import_id=roster_import.pk)
    roster_import.refresh_from_db()
    assert roster_import.state == RosterImportState.VALID
    taken = member(school, Role.PUPIL, email="zoe@school.test")
    Membership.objects.filter(user=taken).update(sourced_id="u-elsewhere")
    audit_before = AuditEvent.objects.count()

    result = roster_import_apply(roster_import=roster_import, actor=None)

    assert result.state == RosterImportState.INVALID
    assert ("users.csv", 4, "email") in [
        (e["file"], e["line"], e["column"]) for e in result.report["errors"]
    ]
    assert not Term.objects.filter(school=school).exists()
    assert AuditEvent.objects.count() == audit_before
