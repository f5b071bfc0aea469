"""Two workers scanning at once notify each person once (each thread has its own connection).

On SQLite the threads use a file copy of the test database: the in-memory test database is
opened in shared-cache mode, whose table locks fail at once ("database table is locked") where a
file database, like the embedded default's, waits for the writer as in production.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core import mail
from django.db import connection

from classrooms.models import Notification
from classrooms.notifications import services
from tests.classrooms.notifications.conftest import build_soon

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def share(tmp_path: Path) -> Iterator[Callable[[], None]]:
    """Call after building the rows: from then on, new connections (the threads') see them."""
    settings_dict = connection.settings_dict
    name = settings_dict["NAME"]

    def share() -> None:
        if connection.vendor != "sqlite":
            return
        path = tmp_path / "shared.sqlite3"
        connection.ensure_connection()
        target = sqlite3.connect(path)
        connection.connection.backup(target)
        target.close()
        settings_dict["NAME"] = str(path)

    yield share
    settings_dict["NAME"] = name


def run_together(*jobs: Callable[[], object]) -> list[object]:
    """Start the jobs at the same moment, each in a thread with its own database connection."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(index: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = job()
        except BaseException as error:  # reported by the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return results


def rows() -> list[tuple[int, bool]]:
    """(user id, emailed) of every notification, read from a thread like the workers."""
    (found,) = run_together(
        lambda: list(Notification.objects.values_list("user_id", "emailed_at").order_by("user_id"))
    )
    assert isinstance(found, list)
    return [(user_id, emailed_at is not None) for user_id, emailed_at in found]


def test_two_scans_at_once_notify_and_email_each_person_once(frozen_now, share):
    soon = build_soon()
    share()
    results = run_together(
        lambda: services.reminders_send(now=frozen_now),
        lambda: services.reminders_send(now=frozen_now),
    )
    assert sum(r for r in results if isinstance(r, int)) == 3
    assert rows() == [(user_id, True) for user_id in sorted(soon.rostered)]
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        u.email for u in (soon.teacher, *soon.pupils)
    )


def test_a_scan_racing_the_rescue_of_a_dead_worker_s_rows_emails_once(frozen_now, share):
    soon = build_soon()
    services.reminders_create(now=frozen_now)
    share()
    results = run_together(
        lambda: services.reminders_send(now=frozen_now),
        lambda: services.notifications_deliver(now=frozen_now),
        lambda: services.reminders_send(now=frozen_now),
    )
    assert sum(r for r in results if isinstance(r, int)) == 3
    assert len(mail.outbox) == 3
    assert rows() == [(user_id, True) for user_id in sorted(soon.rostered)]
