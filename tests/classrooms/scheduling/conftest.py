"""Fixtures of the scheduling tests: Paris wall-clock times and a record of the notices queued."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from classrooms import tasks

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in Paris, the campus schools' zone."""
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def notices(monkeypatch) -> list[tuple[int, str]]:
    """The (lesson id, kind) of every lesson_change_notify task queued, instead of running it."""
    queued: list[tuple[int, str]] = []
    monkeypatch.setattr(
        tasks.lesson_change_notify,
        "delay",
        lambda lesson_id, kind: queued.append((lesson_id, kind)),
    )
    return queued


@pytest.fixture
def log_in(client) -> Callable[[Any], Any]:
    """Log the test client in as a user; returns the client."""

    def log_in_as(user):
        client.force_login(user)
        return client

    return log_in_as
