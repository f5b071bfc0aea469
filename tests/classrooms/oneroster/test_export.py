"""The export is OneRoster 1.2 that our import reads back: the same people, classes, rosters."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from accounts.models import Guardianship, Membership
from classrooms.models import AuditAction, AuditEvent, Enrollment, SchoolClass
from classrooms.oneroster.services import roster_export, roster_import_bundle_report
from tests.classrooms.oneroster.builder import RosterBuilder
from tests.classrooms.oneroster.conftest import run
from tests.factories import SchoolFactory

pytestmark = pytest.mark.django_db


def people(school) -> set[tuple[str, str, str, str]]:
    return set(
        Membership.objects.active()
        .filter(school=school)
        .values_list("user__email", "user__given_name", "user__family_name", "role")
    )


def classes(school) -> set[tuple[str, str, str, str]]:
    return set(
        SchoolClass.objects.filter(school=school, archived_at__isnull=True).values_list(
            "name", "term__name", "course__code", "course__title"
        )
    )


def rosters(school) -> set[tuple[str, str, str]]:
    return set(
        Enrollment.objects.filter(school=school).values_list(
            "school_class__name", "user__email", "role"
        )
    )


def guardians(school) -> set[tuple[str, str]]:
    return set(
        Guardianship.objects.filter(school=school).values_list("guardian__email", "pupil__email")
    )


def reimport(data: bytes):
    empty = SchoolFactory.create(name="Empty school", slug="empty")
    report = roster_import_bundle_report(
        school=empty, files=[("export.zip", data)], apply=True, actor=None
    )
    assert report.valid, [error.as_text() for error in report.errors]
    return empty


def test_export_then_import_into_an_empty_school_gives_the_same_roster(school):
    run(school, RosterBuilder.school("1.1"))

    data = roster_export(school=school, actor=None)
    empty = reimport(data)

    assert people(empty) == people(school)
    assert classes(empty) == classes(school)
    assert rosters(empty) == rosters(school)
    assert guardians(empty) == guardians(school)
    assert (
        AuditEvent.objects.filter(school=school, action=AuditAction.EXPORT_DOWNLOADED).count() == 1
    )


def test_a_school_made_by_hand_exports_with_generated_ids_and_round_trips(campus):
    """Rows without a sourcedId get hr-... ids in the file; the database keeps them empty."""
    data = roster_export(school=campus.school_a, actor=campus.admin_a)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        users = list(csv.DictReader(io.StringIO(archive.read("users.csv").decode())))
        manifest = dict(csv.reader(io.StringIO(archive.read("manifest.csv").decode())))
    assert {"manifest.csv", "orgs.csv", "users.csv", "roles.csv", "enrollments.csv"} <= names
    assert manifest["oneroster.version"] == "1.2"
    assert all(row["sourcedId"].startswith("hr-user-") for row in users)
    assert not Membership.objects.filter(school=campus.school_a).exclude(sourced_id="").exists()

    empty = reimport(data)

    assert people(empty) == people(campus.school_a)
    assert classes(empty) == classes(campus.school_a)
    # Enrollments of people who are no longer members are not part of the roster.
    active = {email for email, *_ in people(campus.school_a)}
    assert rosters(empty) == {r for r in rosters(campus.school_a) if r[1] in active}
    assert guardians(empty) == guardians(campus.school_a)
