"""A school keeps the org its first import named; a later bundle of another org is refused."""

from __future__ import annotations

import pytest

from classrooms.models import SchoolClass
from tests.classrooms.oneroster.builder import RosterBuilder
from tests.classrooms.oneroster.conftest import run

pytestmark = pytest.mark.django_db


def test_the_first_applied_import_remembers_the_schools_org(school):
    assert school.org_sourced_id == ""
    report = run(school, RosterBuilder.school())
    assert report.valid, report.errors
    school.refresh_from_db()
    assert school.org_sourced_id == "org-school"


def test_a_later_bundle_of_another_org_is_refused_and_writes_nothing(school):
    """Same school name and identifier, but the information system's org id changed: that is
    another organisation's export, not a new version of this school's."""
    assert run(school, RosterBuilder.school()).valid
    classes_before = set(SchoolClass.objects.filter(school=school).values_list("name", flat=True))

    other = RosterBuilder.school(org="org-elsewhere")
    other.school_class("k-6a", "6A Maths", "c-maths", "t-year")
    report = run(school, other)

    assert not report.valid
    assert any(
        error.file == "orgs.csv" and "org-school" in error.message for error in report.errors
    )
    school.refresh_from_db()
    assert school.org_sourced_id == "org-school"
    assert set(SchoolClass.objects.filter(school=school).values_list("name", flat=True)) == (
        classes_before
    )


def test_validating_without_applying_does_not_set_the_org(school):
    assert run(school, RosterBuilder.school(), apply=False).valid
    school.refresh_from_db()
    assert school.org_sourced_id == ""
