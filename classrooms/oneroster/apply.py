"""Write a valid plan's changes with bulk queries, parents before children.

The caller holds the transaction (all or nothing). The number of queries grows with the number of
batches, not of rows: creates and updates go `BATCH` rows at a time, removals by chunks of ids.
New accounts get an unusable password: people log in after an invitation sets one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from django.contrib.auth.hashers import make_password

from accounts.models import Guardianship, Membership, User
from classrooms.models import Course, Enrollment, School, SchoolClass, Term
from classrooms.oneroster.changes import Changes, Ref

BATCH: Final = 1000


def _resolve(ref: Ref, created: dict[str, int]) -> int:
    return ref if isinstance(ref, int) else created[ref]


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    ordered = sorted(ids)
    return [ordered[start : start + BATCH] for start in range(0, len(ordered), BATCH)]


def apply_changes(*, school: School, changes: Changes, now: datetime) -> None:
    terms = _apply_terms(school, changes)
    courses = _apply_courses(school, changes)
    classes = _apply_classes(school, changes, terms, courses, now)
    users = _apply_people(school, changes, now)
    for chunk in _chunks(list(changes.enrollments_removed)):
        Enrollment.objects.filter(school=school, pk__in=chunk).delete()
    created = [
        Enrollment(
            school=school,
            school_class_id=_resolve(change.school_class, classes),
            user_id=_resolve(change.user, users),
            role=change.role,
            sourced_id=change.sourced_id,
        )
        for change in changes.enrollments
        if change.pk is None
    ]
    Enrollment.objects.bulk_create(created, batch_size=BATCH)
    updated = [
        Enrollment(pk=change.pk, role=change.role, sourced_id=change.sourced_id)
        for change in changes.enrollments
        if change.pk is not None
    ]
    Enrollment.objects.bulk_update(updated, ["role", "sourced_id"], batch_size=BATCH)


def _apply_terms(school: School, changes: Changes) -> dict[str, int]:
    new = [
        Term(
            school=school,
            name=change.name,
            starts_on=change.starts_on,
            ends_on=change.ends_on,
            sourced_id=change.sourced_id,
        )
        for change in changes.terms
        if change.pk is None
    ]
    Term.objects.bulk_create(new, batch_size=BATCH)
    Term.objects.bulk_update(
        [
            Term(
                pk=change.pk,
                name=change.name,
                starts_on=change.starts_on,
                ends_on=change.ends_on,
                sourced_id=change.sourced_id,
            )
            for change in changes.terms
            if change.pk is not None
        ],
        ["name", "starts_on", "ends_on", "sourced_id"],
        batch_size=BATCH,
    )
    return {term.sourced_id: term.pk for term in new}


def _apply_courses(school: School, changes: Changes) -> dict[str, int]:
    new = [
        Course(school=school, title=change.title, code=change.code, sourced_id=change.sourced_id)
        for change in changes.courses
        if change.pk is None
    ]
    Course.objects.bulk_create(new, batch_size=BATCH)
    Course.objects.bulk_update(
        [
            Course(pk=change.pk, title=change.title, code=change.code, sourced_id=change.sourced_id)
            for change in changes.courses
            if change.pk is not None
        ],
        ["title", "code", "sourced_id"],
        batch_size=BATCH,
    )
    return {course.sourced_id: course.pk for course in new}


def _apply_classes(
    school: School,
    changes: Changes,
    terms: dict[str, int],
    courses: dict[str, int],
    now: datetime,
) -> dict[str, int]:
    for chunk in _chunks(changes.classes_archived):
        SchoolClass.objects.filter(school=school, pk__in=chunk).update(archived_at=now)
    new = [
        SchoolClass(
            school=school,
            name=change.name,
            term_id=_resolve(change.term, terms),
            course_id=_resolve(change.course, courses),
            sourced_id=change.sourced_id,
        )
        for change in changes.classes
        if change.pk is None
    ]
    SchoolClass.objects.bulk_create(new, batch_size=BATCH)
    SchoolClass.objects.bulk_update(
        [
            SchoolClass(
                pk=change.pk,
                name=change.name,
                term_id=_resolve(change.term, terms),
                course_id=_resolve(change.course, courses),
                sourced_id=change.sourced_id,
                archived_at=None,
            )
            for change in changes.classes
            if change.pk is not None
        ],
        ["name", "term_id", "course_id", "sourced_id", "archived_at"],
        batch_size=BATCH,
    )
    return {school_class.sourced_id: school_class.pk for school_class in new}


def _apply_people(school: School, changes: Changes, now: datetime) -> dict[str, int]:
    new_users = [
        User(
            email=change.email,
            given_name=change.given_name,
            family_name=change.family_name,
            password=make_password(None),
        )
        for change in changes.users
        if change.pk is None
    ]
    sourced_ids = [change.sourced_id for change in changes.users if change.pk is None]
    User.objects.bulk_create(new_users, batch_size=BATCH)
    created = {sid: user.pk for sid, user in zip(sourced_ids, new_users, strict=True)}
    User.objects.bulk_update(
        [
            User(
                pk=change.pk,
                email=change.email,
                given_name=change.given_name,
                family_name=change.family_name,
            )
            for change in changes.users
            if change.pk is not None
        ],
        ["email", "given_name", "family_name"],
        batch_size=BATCH,
    )
    for chunk in _chunks(changes.memberships_deactivated):
        Membership.objects.filter(school=school, pk__in=chunk).update(deactivated_at=now)
    Membership.objects.bulk_create(
        [
            Membership(
                user_id=_resolve(change.user, created),
                school=school,
                role=change.role,
                sourced_id=change.sourced_id,
                deactivated_at=None if change.active else now,
            )
            for change in changes.memberships
            if change.pk is None
        ],
        batch_size=BATCH,
    )
    Membership.objects.bulk_update(
        [
            Membership(
                pk=change.pk,
                sourced_id=change.sourced_id,
                deactivated_at=None if change.active else now,
            )
            for change in changes.memberships
            if change.pk is not None
        ],
        ["sourced_id", "deactivated_at"],
        batch_size=BATCH,
    )
    for chunk in _chunks(changes.guardianships_removed):
        Guardianship.objects.filter(school=school, pk__in=chunk).delete()
    Guardianship.objects.bulk_create(
        [
            Guardianship(
                school=school,
                guardian_id=_resolve(guardian, created),
                pupil_id=_resolve(pupil, created),
            )
            for guardian, pupil in changes.guardianships
        ],
        batch_size=BATCH,
    )
    return created
