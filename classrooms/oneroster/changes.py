"""The changes a plan asks for, in the shape `apply` writes them with bulk queries.

A reference to a row is its primary key when the row exists, or its sourcedId (a `str`) when the
same plan creates it; `apply` resolves those after it has created the parents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from classrooms.oneroster.report import Report

Ref = int | str


@dataclass(slots=True)
class TermChange:
    sourced_id: str
    name: str
    starts_on: date
    ends_on: date
    pk: int | None = None


@dataclass(slots=True)
class CourseChange:
    sourced_id: str
    title: str
    code: str
    pk: int | None = None


@dataclass(slots=True)
class ClassChange:
    sourced_id: str
    name: str
    term: Ref
    course: Ref
    pk: int | None = None


@dataclass(slots=True)
class UserChange:
    sourced_id: str
    email: str
    given_name: str
    family_name: str
    pk: int | None = None


@dataclass(slots=True)
class MembershipChange:
    user: Ref
    role: str
    sourced_id: str
    active: bool
    pk: int | None = None


@dataclass(slots=True)
class EnrollmentChange:
    school_class: Ref
    user: Ref
    role: str
    sourced_id: str
    pk: int | None = None


@dataclass
class Changes:
    terms: list[TermChange] = field(default_factory=list)
    courses: list[CourseChange] = field(default_factory=list)
    classes: list[ClassChange] = field(default_factory=list)
    classes_archived: list[int] = field(default_factory=list)
    users: list[UserChange] = field(default_factory=list)
    memberships: list[MembershipChange] = field(default_factory=list)
    memberships_deactivated: list[int] = field(default_factory=list)
    guardianships: list[tuple[Ref, Ref]] = field(default_factory=list)
    guardianships_removed: list[int] = field(default_factory=list)
    enrollments: list[EnrollmentChange] = field(default_factory=list)
    enrollments_removed: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Plan:
    """A report, and when it is valid, the changes that applying the bundle makes."""

    report: Report
    changes: Changes
    org_sourced_id: str
    changed_sourced_ids: tuple[str, ...] = ()
