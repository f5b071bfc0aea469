"""Fixtures of the API tests: the two-school campus with one person per role in each school, a
lesson still to come, a weekly series and a notification per person, and clients signed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from classrooms.models import Enrollment, Lesson, LessonSeries, Notification, NotificationKind
from classrooms.scheduling import services as scheduling
from tests.factories import Campus, LessonFactory, guardian_of

# Who the matrix signs in as: one person per role in school A, then in school B.
ROLES = (
    "anonymous",
    "pupil_a",
    "teacher_a",
    "guardian_a",
    "admin_a",
    "pupil_b",
    "teacher_b",
    "guardian_b",
    "admin_b",
)
# Friday 14 March 2025, 10:00 in Paris: two days after the frozen clock's Wednesday.
FRIDAY_MORNING = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)


@dataclass
class World:
    """The campus, plus what the API needs around it."""

    campus: Campus
    guardian_b: User
    # A lesson of class X still to come, so it can be moved and cancelled.
    later_x: Lesson
    series_x: LessonSeries
    series_z: LessonSeries
    enrollment_pupil_x: Enrollment
    notifications: dict[str, Notification]

    def person(self, role: str) -> User | None:
        c = self.campus
        return {
            "anonymous": None,
            "pupil_a": c.pupil_x,
            "teacher_a": c.teacher_x,
            "guardian_a": c.guardian_a,
            "admin_a": c.admin_a,
            "pupil_b": c.pupil_z,
            "teacher_b": c.teacher_z,
            "guardian_b": self.guardian_b,
            "admin_b": c.admin_b,
        }[role]

    def school_of(self, role: str) -> int:
        school = self.campus.school_a if role.endswith("_a") else self.campus.school_b
        return school.pk


def notify(user: User, school_id: int, lesson: Lesson, n: int) -> Notification:
    return Notification.objects.create(
        school_id=school_id,
        user=user,
        lesson=lesson,
        kind=NotificationKind.REMINDER,
        dedupe_key=f"test:{lesson.pk}:{n}",
        title=f"{lesson.title} starts soon",
    )


@pytest.fixture
def world(campus: Campus) -> World:
    later_x = LessonFactory.create(
        school_class=campus.class_x,
        title="Decimals",
        starts_at=FRIDAY_MORNING,
        ends_at=FRIDAY_MORNING.replace(hour=10),
    )
    series = {
        school_class.pk: scheduling.series_create(
            actor=admin,
            school_class=school_class,
            title="Weekly practice",
            weekdays=["MO", "TH"],
            start_time=time(14, 0),
            duration_minutes=55,
            starts_on=date(2025, 3, 13),
            ends_on=date(2025, 4, 30),
        )
        for school_class, admin in (
            (campus.class_x, campus.admin_a),
            (campus.class_z, campus.admin_b),
        )
    }
    built = World(
        campus=campus,
        guardian_b=guardian_of(campus.pupil_z, school=campus.school_b, given_name="Gus"),
        later_x=later_x,
        series_x=series[campus.class_x.pk],
        series_z=series[campus.class_z.pk],
        enrollment_pupil_x=Enrollment.objects.get(user=campus.pupil_x, school_class=campus.class_x),
        notifications={},
    )
    for role in ROLES[1:]:
        user = built.person(role)
        assert user is not None
        lesson = campus.lesson_x if role.endswith("_a") else campus.lesson_z
        built.notifications[role] = notify(user, built.school_of(role), lesson, 0)
    return built


def client_for(user: User | None) -> APIClient:
    """A client signed in with a session (or anonymous)."""
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def as_role(world: World):
    def make(role: str) -> APIClient:
        return client_for(world.person(role))

    return make
