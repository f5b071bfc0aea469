"""Fixtures for the timetable's tests: a logged-in client, and a school grown in bulk."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import Membership, Role, User
from classrooms.models import (
    Course,
    Enrollment,
    EnrollmentRole,
    Lesson,
    LessonState,
    School,
    SchoolClass,
    Term,
)
from tests.factories import Campus


@pytest.fixture
def log_in(client):
    """Log the test client in as a user; returns the client."""

    def log_in_as(user: User):
        client.force_login(user)
        return client

    return log_in_as


def grow(campus: Campus, *, classes: int, pupils: int, lessons: int) -> None:
    """Add classes to school A, each with its own course, taught by teacher_x, with pupil_x and
    `pupils` more pupils on its roster and `lessons` lessons today (one of them live, one
    cancelled); give class X as many lessons more, all in bulk."""
    school: School = campus.school_a
    term = Term.objects.filter(school=school).first()
    assert term is not None
    start = SchoolClass.objects.count()
    courses = Course.objects.bulk_create(
        Course(school=school, title=f"Grown course {start + n}", code=f"GROWN{start + n}")
        for n in range(classes)
    )
    new_classes = SchoolClass.objects.bulk_create(
        SchoolClass(school=school, term=term, course=course, name=f"Grown {start + n}")
        for n, course in enumerate(courses)
    )
    first = User.objects.count()
    new_pupils = User.objects.bulk_create(
        User(email=f"grown{first + n}@school.test", given_name=f"Grown{first + n}")
        for n in range(classes * pupils)
    )
    Membership.objects.bulk_create(
        Membership(user=user, school=school, role=Role.PUPIL) for user in new_pupils
    )
    enrollments = []
    for index, school_class in enumerate(new_classes):
        roster = [
            (campus.teacher_x, EnrollmentRole.TEACHER),
            (campus.pupil_x, EnrollmentRole.PUPIL),
        ]
        roster += [
            (user, EnrollmentRole.PUPIL)
            for user in new_pupils[index * pupils : (index + 1) * pupils]
        ]
        enrollments += [
            Enrollment(school=school, school_class=school_class, user=user, role=role)
            for user, role in roster
        ]
    Enrollment.objects.bulk_create(enrollments)
    now = campus.lesson_x.starts_at + timedelta(minutes=5)
    Lesson.objects.bulk_create(
        Lesson(
            school=school,
            school_class=school_class,
            title=f"Grown lesson {n}",
            starts_at=now + timedelta(minutes=20 * (n - lessons // 2)),
            ends_at=now + timedelta(minutes=20 * (n - lessons // 2) + 15),
            state=(
                LessonState.LIVE
                if n == lessons // 2
                else LessonState.CANCELLED
                if n == 0
                else LessonState.SCHEDULED
            ),
        )
        for school_class in [*new_classes, campus.class_x]
        for n in range(lessons)
    )
