"""Fixtures for the timetable's tests: a logged-in client."""

from __future__ import annotations

import pytest

from accounts.models import User


@pytest.fixture
def log_in(client):
    """Log the test client in as a user; returns the client."""

    def log_in_as(user: User):
        client.force_login(user)
        return client

    return log_in_as
