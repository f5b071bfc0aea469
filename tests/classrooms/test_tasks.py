"""Lessons past their end are marked ended by a periodic task, with or without a broker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings

from classrooms import services as classroom_services
from classrooms.models import LessonState
from classrooms.tasks import lessons_end_finished
from config.celery import app
from tests.factories import LessonFactory

pytestmark = pytest.mark.django_db


def test_the_task_ends_lessons_past_their_end_and_leaves_the_others(frozen_now):
    """Scheduled and live lessons that are over become ended; running, future, cancelled stay."""
    over = LessonFactory.create(
        starts_at=frozen_now - timedelta(hours=2), ends_at=frozen_now - timedelta(hours=1)
    )
    over_live = LessonFactory.create(
        starts_at=frozen_now - timedelta(hours=2),
        ends_at=frozen_now - timedelta(minutes=1),
        state=LessonState.LIVE,
    )
    running = LessonFactory.create(
        starts_at=frozen_now - timedelta(minutes=10),
        ends_at=frozen_now + timedelta(minutes=10),
        state=LessonState.LIVE,
    )
    future = LessonFactory.create(
        starts_at=frozen_now + timedelta(hours=1), ends_at=frozen_now + timedelta(hours=2)
    )
    cancelled = LessonFactory.create(
        starts_at=frozen_now - timedelta(hours=2),
        ends_at=frozen_now - timedelta(hours=1),
        state=LessonState.CANCELLED,
    )

    result = lessons_end_finished.apply()

    assert result.get() == 2
    for lesson, state in (
        (over, LessonState.ENDED),
        (over_live, LessonState.ENDED),
        (running, LessonState.LIVE),
        (future, LessonState.SCHEDULED),
        (cancelled, LessonState.CANCELLED),
    ):
        lesson.refresh_from_db()
        assert lesson.state == state
    assert lessons_end_finished.apply().get() == 0


def test_beat_runs_the_task_every_minute():
    """The periodic schedule names a registered task."""
    entry = settings.CELERY_BEAT_SCHEDULE["lessons-end-finished"]
    assert entry["schedule"] == 60.0
    assert entry["task"] in app.tasks


def test_without_redis_tasks_run_in_process_and_with_redis_they_go_to_the_broker():
    """The embedded default needs no broker; REDIS_URL sends tasks through Redis."""
    if settings.REDIS_URL:
        assert app.conf.broker_url == settings.REDIS_URL
        assert app.conf.task_always_eager is False
    else:
        assert app.conf.broker_url == "memory://"
        assert app.conf.task_always_eager is True


def test_ending_lessons_closes_their_rooms_once_committed(
    frozen_now, monkeypatch, django_capture_on_commit_callbacks
):
    """Whoever is still connected to a lesson the timetable ends is sent away (4412), after the
    commit, so a page that tries to come back is refused by a database that says it is over."""
    over = LessonFactory.create(
        starts_at=frozen_now - timedelta(hours=1), ends_at=frozen_now - timedelta(minutes=1)
    )
    LessonFactory.create(
        starts_at=frozen_now - timedelta(minutes=10), ends_at=frozen_now + timedelta(minutes=10)
    )
    closed: list[str] = []
    monkeypatch.setattr(
        classroom_services, "lesson_close", lambda *, lesson_key: closed.append(lesson_key)
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert classroom_services.lessons_end_finished(now=frozen_now) == 1
    assert closed == []
    for callback in callbacks:
        callback()

    assert closed == [over.key]
