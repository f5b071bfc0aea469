"""Fixtures of the roster import tests: the school a bundle targets, and row counts."""

from __future__ import annotations

import pytest

from accounts.models import Guardianship, Invitation, Membership, User
from classrooms.models import (
    AuditEvent,
    Course,
    Enrollment,
    RosterImport,
    School,
    SchoolClass,
    Term,
)
from classrooms.oneroster.report import Report
from classrooms.oneroster.services import roster_import_bundle_report
from tests.classrooms.oneroster.builder import RosterBuilder
from tests.factories import SchoolFactory

TABLES = (
    User,
    Membership,
    Guardianship,
    Invitation,
    Term,
    Course,
    SchoolClass,
    Enrollment,
    AuditEvent,
    RosterImport,
)


@pytest.fixture
def school(db) -> School:
    """The school the default bundle describes (its org is named after it)."""
    return SchoolFactory.create(name="Lycée Victor Hugo", slug="victor-hugo")


def run(school: School, builder: RosterBuilder, *, apply: bool = True) -> Report:
    return roster_import_bundle_report(
        school=school, files=builder.files(), apply=apply, actor=None
    )


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in TABLES}


def errors_of(report: Report) -> list[tuple[str, int, str]]:
    return [(error.file, error.line, error.column) for error in report.errors]
