"""Fixtures shared by every test: fast password hashing, a fixed clock, two schools side by side."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.factories import Campus, build_campus

# A Wednesday, 10:30 in Paris: mid-week and mid-morning, far from midnight in any zone we use.
WEDNESDAY_MORNING = datetime(2025, 3, 12, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Hash passwords with MD5 in tests: the real hasher costs a tenth of a second per password."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def frozen_now(time_machine) -> datetime:
    """Stop the clock on a Wednesday morning, so "today" and "this week" are known."""
    time_machine.move_to(WEDNESDAY_MORNING, tick=False)
    return WEDNESDAY_MORNING


@pytest.fixture
def campus(db, frozen_now) -> Campus:
    """Schools A and B with someone in every position, and a lesson of each class on now."""
    return build_campus(now=frozen_now)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last (after pytest-django's own ordering).

    Playwright's sync API keeps an event loop running in the main thread while its session-scoped
    browser is open; an asyncio test after it would find that loop and fail to start its own.
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
