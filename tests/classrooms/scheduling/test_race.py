"""Two requests scheduling at the same moment cannot both pass the clash check.

Each thread has its own database connection and its own transaction; a barrier lets both start
together. On PostgreSQL the class rows locked by `lock_timetables` make the second wait for the
first to commit, then see its lesson; on SQLite, BEGIN IMMEDIATE serializes the two writers.

The test database of SQLite is in memory with a shared cache, where a writer that finds another
one answers "database table is locked" at once instead of waiting as a file database does (the
settings give it 20 seconds). On SQLite only, an attempt refused that way runs again after a
moment, which is the wait a file database would have made; it had read nothing, since its
transaction is all or nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import OperationalError, connection

from accounts.models import User
from classrooms.models import EnrollmentRole, Lesson, SchoolClass
from classrooms.scheduling import clashes, services
from classrooms.scheduling.exceptions import ScheduleClash
from tests.classrooms.scheduling.conftest import paris
from tests.factories import Campus, EnrollmentFactory, build_campus

pytestmark = pytest.mark.django_db(transaction=True)


def patiently(attempt: Callable[[], object]) -> object:
    """Run an attempt, waiting out SQLite's shared-cache lock as a file database would."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return attempt()
        except OperationalError as error:
            locked = connection.vendor == "sqlite" and "locked" in str(error)
            if not locked or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def race(*attempts: Callable[[], object]) -> list[object]:
    """Run each attempt in its own thread at once; return what each returned or raised."""
    barrier = threading.Barrier(len(attempts))
    outcomes: list[object] = [None] * len(attempts)

    def run(index: int, attempt: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[index] = patiently(attempt)
        except Exception as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.fixture(autouse=True)
def _slow_check(monkeypatch):
    """Hold each request a moment between its clash check and its write, so that without the
    lock both would check before either wrote."""
    check = clashes.check_clashes

    def check_then_pause(*args: Any, **kwargs: Any) -> None:
        check(*args, **kwargs)
        time.sleep(0.3)

    monkeypatch.setattr(services, "check_clashes", check_then_pause)


@pytest.fixture
def campus(time_machine):
    time_machine.move_to(datetime(2025, 3, 12, 9, 30, tzinfo=UTC), tick=False)
    return build_campus()


def attempt(
    campus: Campus, actor: User, school_class: SchoolClass, title: str
) -> Callable[[], Lesson]:
    def schedule() -> Lesson:
        return services.lesson_schedule(
            actor=actor,
            school_class=school_class,
            title=title,
            starts_at=paris(2025, 3, 18, 10, 0),
            ends_at=paris(2025, 3, 18, 10, 55),
        )

    return schedule


def assert_one_won(outcomes: list[object]) -> None:
    lessons = [outcome for outcome in outcomes if isinstance(outcome, Lesson)]
    clashes = [outcome for outcome in outcomes if isinstance(outcome, ScheduleClash)]
    assert (len(lessons), len(clashes)) == (1, 1), outcomes


def test_two_requests_for_one_class_at_once_schedule_one_lesson(campus):
    outcomes = race(
        attempt(campus, campus.teacher_x, campus.class_x, "First"),
        attempt(campus, campus.admin_a, campus.class_x, "Second"),
    )
    assert_one_won(outcomes)
    assert Lesson.objects.filter(starts_at=paris(2025, 3, 18, 10, 0)).count() == 1


def test_two_requests_for_one_teacher_in_two_classes_at_once_schedule_one_lesson(campus):
    EnrollmentFactory.create(
        user=campus.teacher_x, school_class=campus.class_y, role=EnrollmentRole.TEACHER
    )
    outcomes = race(
        attempt(campus, campus.teacher_x, campus.class_x, "Maths"),
        attempt(campus, campus.teacher_x, campus.class_y, "French"),
    )
    assert_one_won(outcomes)
    assert Lesson.objects.filter(starts_at=paris(2025, 3, 18, 10, 0)).count() == 1
