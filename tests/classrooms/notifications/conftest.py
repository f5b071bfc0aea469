"""A class with a lesson starting soon and everyone around its roster."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from classrooms.models import Lesson, SchoolClass
from tests.factories import (
    EnrollmentFactory,
    LessonFactory,
    SchoolClassFactory,
    UserFactory,
    admin_of,
    pupil_of,
    teacher_of,
)


@dataclass
class Soon:
    """Class 5A (lead time 10 min) with a lesson in 8 minutes; its teacher and two pupils get
    the reminder; an inactive user, a deactivated member, a leaver, a pupil of another class and
    the school admin do not."""

    school_class: SchoolClass
    lesson: Lesson
    teacher: User
    pupils: list[User]
    inactive: User
    deactivated: User
    leaver: User
    other_pupil: User
    admin: User

    @property
    def rostered(self) -> set[int]:
        return {self.teacher.pk, *(p.pk for p in self.pupils)}


def lesson_in(school_class: SchoolClass, minutes: float, **fields: object) -> Lesson:
    starts = timezone.now() + timedelta(minutes=minutes)
    lesson: Lesson = LessonFactory.create(
        school_class=school_class,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=55),
        **fields,
    )
    return lesson


def build_soon() -> Soon:
    school_class = SchoolClassFactory.create(name="5A Maths")
    other = SchoolClassFactory.create(school=school_class.school, name="5B Maths")
    deactivated = pupil_of(school_class, given_name="Dee")
    deactivated.memberships.update(deactivated_at=timezone.now())
    leaver = UserFactory.create(given_name="Leo")
    EnrollmentFactory.create(user=leaver, school_class=school_class)
    return Soon(
        school_class=school_class,
        lesson=lesson_in(school_class, 8, title="Fractions"),
        teacher=teacher_of(school_class, given_name="Theo"),
        pupils=[
            pupil_of(school_class, given_name="Pia"),
            pupil_of(school_class, given_name="Paul"),
        ],
        inactive=pupil_of(school_class, given_name="Ines", is_active=False),
        deactivated=deactivated,
        leaver=leaver,
        other_pupil=pupil_of(other),
        admin=admin_of(school_class.school),
    )


@pytest.fixture
def soon(db, frozen_now: datetime) -> Soon:
    return build_soon()
