"""The embedded default runs the periodic services inside the web process (no beat, no worker)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from django.core import mail

from classrooms import services as classroom_services
from classrooms.models import Lesson, LessonState
from classrooms.notifications import scheduler
from tests.classrooms.notifications.conftest import build_soon


@pytest.mark.django_db
def test_one_tick_sends_reminders_and_ends_finished_lessons(frozen_now):
    soon = build_soon()
    over = Lesson.objects.create(
        school=soon.school_class.school,
        school_class=soon.school_class,
        title="Earlier",
        starts_at=frozen_now.replace(hour=7),
        ends_at=frozen_now.replace(hour=8),
    )
    assert scheduler.periodic_run_once() == {"lessons_end_finished": 1, "reminders_send": 3}
    over.refresh_from_db()
    assert over.state == LessonState.ENDED
    assert len(mail.outbox) == 3


@pytest.mark.django_db
def test_a_failing_service_is_logged_and_the_others_still_run(frozen_now, monkeypatch, caplog):
    build_soon()

    def broken(*, now: Any) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(classroom_services, "lessons_end_finished", broken)
    with caplog.at_level(logging.ERROR, logger=scheduler.__name__):
        results = scheduler.periodic_run_once()
    assert results == {"lessons_end_finished": None, "reminders_send": 3}
    assert "periodic lessons_end_finished failed" in caplog.text


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_loop_ticks_the_given_number_of_times_and_survives_errors(monkeypatch):
    calls: list[int] = []

    def tick() -> dict[str, int | None]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the first tick breaks")
        return {}

    monkeypatch.setattr(scheduler, "periodic_run_once", tick)
    await scheduler.periodic_loop(every=0, iterations=3)
    assert len(calls) == 3


@pytest.mark.asyncio
async def test_the_middleware_starts_the_loop_once_on_the_first_call(monkeypatch):
    started: list[float] = []
    forever = asyncio.Event()

    async def loop(*, every: float, iterations: int | None = None) -> None:
        started.append(every)
        await forever.wait()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    monkeypatch.setattr(scheduler, "periodic_loop", loop)
    wrapped = scheduler.PeriodicInProcess(app, every=30)
    await wrapped({"type": "http"}, None, None)  # type: ignore[arg-type]
    await wrapped({"type": "http"}, None, None)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert started == [30]
    assert wrapped.task is not None
    wrapped.task.cancel()
