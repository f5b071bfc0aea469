"""A server restart in the middle of the live lesson loses nothing: real Chromium, real daphne.

The teacher and pupil6 are in "5B Maths" with media flowing both ways when daphne is terminated
and started again on the same port and database. The room and every peer connection die with the
process; the pages must say so, rejoin by themselves on new peer connections, get the teacher's
grants back from the database, and leave an attendance register that shows one presence across
the gap. The test runs its own server and database, since it restarts the server, so the shared
one of the other browser tests never notices. The presence intervals themselves are shown
nowhere, so the test reads them from the server's database (read only).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, JSHandle, Page, expect

from media_relay.rooms import HEARTBEAT_SECONDS
from tests.browser.conftest import (
    Daphne,
    new_server_database,
    person,
    run_restartable_demo_server,
)
from tests.browser.live import (
    JOIN,
    Member,
    allow_and_switch_on,
    in_room,
    pupil_joins_from_my_week,
    wait_until,
)

pytestmark = pytest.mark.browser

# The relay marks the connected as seen this often (media_relay.rooms.HEARTBEAT_SECONDS): a crash
# may lose at most that much of an interval, plus the time the database write takes.
HEARTBEAT = timedelta(seconds=HEARTBEAT_SECONDS)
SLACK = timedelta(seconds=2)
# The page retries with backoff (0.5, 1, 2, 4, 8 s) while daphne starts again.
REJOIN_TIMEOUT_MS = 20_000

INTERVALS_SQL = """
    SELECT p.joined_at, p.left_at, p.last_seen_at
    FROM classrooms_presenceinterval p JOIN classrooms_lesson l ON l.id = p.lesson_id
    WHERE l.key = {0} AND p.user_id = {0}
    ORDER BY p.joined_at, p.id
"""


@dataclass(frozen=True)
class Interval:
    joined_at: datetime
    left_at: datetime | None
    last_seen_at: datetime


def _utc(value: datetime | str) -> datetime:
    """A UTC datetime from either engine (SQLite keeps naive UTC text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def presence_intervals(database_url: str, *, lesson_key: str, user_id: str) -> list[Interval]:
    """The user's presence intervals in the lesson, oldest first, as the server recorded them."""
    params = (lesson_key, int(user_id))
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            rows = conn.execute(INTERVALS_SQL.format("?"), params).fetchall()
    else:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(INTERVALS_SQL.format("%s"), params).fetchall()
    return [
        Interval(
            joined_at=_utc(joined_at),
            left_at=None if left_at is None else _utc(left_at),
            last_seen_at=_utc(last_seen_at),
        )
        for joined_at, left_at, last_seen_at in rows
    ]


@dataclass(frozen=True)
class Restartable:
    server: Daphne
    database_url: str


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Restartable]:
    """A demo server of this test's own, on a database (and Redis database) of its own."""
    for folder in ("db", "data", "log"):
        (tmp_path / folder).mkdir()
    with (
        new_server_database(tmp_path / "db") as database_url,
        run_restartable_demo_server(
            database_url, tmp_path / "data", tmp_path / "log", redis_db=14
        ) as server,
    ):
        yield Restartable(server=server, database_url=database_url)


def teacher_joins(page: Page) -> None:
    page.get_by_role("link", name=JOIN).first.click()
    page.get_by_role("button", name="Join lesson").click()


def rejoined_by_itself(member: Member, old_pc: JSHandle) -> None:
    """The page is back in the room on a new peer connection, and the same document still runs:
    nothing reloaded it."""
    page = member.page
    expect(page.get_by_text("Reconnecting…")).to_be_hidden(timeout=REJOIN_TIMEOUT_MS)
    # A pupil may pass through the lobby until the teacher is back.
    expect(page.locator("[data-lesson-room]")).to_have_attribute(
        "data-state", "room", timeout=REJOIN_TIMEOUT_MS
    )
    wait_until(
        lambda: page.evaluate(
            "(old) => ![null, old].includes(window.homeroomClassroom.pc)",
            old_pc,
        ),
        f"{member.name} has a new peer connection",
    )
    assert page.evaluate("window.beforeTheRestart") is True


def test_a_server_restart_mid_lesson_loses_no_media_grant_or_presence(
    browser: Browser, restartable: Restartable
) -> None:
    server = restartable.server
    teacher = Member(*person(browser, server.base, "teacher@demo.test"))
    pupil = Member(*person(browser, server.base, "pupil6@demo.test"))
    try:
        teacher_joins(teacher.page)
        in_room(teacher)
        pupil_joins_from_my_week(pupil.page, server.base)
        in_room(pupil)
        allow_and_switch_on(teacher.page, pupil)
        teacher.receives(pupil, "camera", "frames")
        pupil.receives(teacher, "camera", "frames")

        old_pcs = []
        for member in (teacher, pupil):
            member.page.evaluate("window.beforeTheRestart = true")
            old_pcs.append(member.page.evaluate_handle("window.homeroomClassroom.pc"))
        stopping_at = datetime.now(UTC)
        server.stop()
        stopped_at = datetime.now(UTC)
        for member in (teacher, pupil):
            expect(member.page.get_by_text("Reconnecting…")).to_be_visible()
        started_at = datetime.now(UTC)
        server.start()

        for member, old_pc in zip((teacher, pupil), old_pcs, strict=True):
            rejoined_by_itself(member, old_pc)
        # The room was lost with the process: the grants come back from the database, and the
        # pupil's page switches its microphone and camera on again by itself.
        for source in ("Mic", "Camera"):
            expect(
                teacher.page.get_by_role("button", name=f"Allow {source} for {pupil.name}")
            ).to_have_attribute("aria-pressed", "true")
        for tool in ("Microphone", "Camera"):
            button = pupil.page.get_by_role("button", name=tool)
            expect(button).to_be_enabled()
            expect(button).to_have_attribute("aria-pressed", "true")
        # The new peer connections start from zero: frames decoded on them are new media.
        teacher.receives(pupil, "camera", "frames")
        pupil.receives(teacher, "camera", "frames")

        href = teacher.page.get_by_role("link", name="Attendance").get_attribute("href")
        assert href is not None
        register = teacher.context.new_page()
        register.goto(f"{server.base}{href}")
        row = register.locator(f"#person-{pupil.id}")
        expect(row).to_contain_text(pupil.name)
        # Present or late, by when the lesson began before the test: the pupil attends either way.
        expect(row.locator(".status-pill")).to_have_text(re.compile("^(Present|Late)$"))
        expect(row.locator("td[data-label='Last leave']")).to_have_text("still here")
        expect(row.locator("td[data-label='Reconnects']")).to_have_text("1")
        # Within the reconnect grace the two intervals are one presence: one bar on the timeline.
        bars = register.locator("rect.timeline__bar title").filter(
            has_text=re.compile(f"^{re.escape(pupil.name)}: ")
        )
        expect(bars).to_have_count(1)

        lesson_key = href.split("/")[-3]
        before, after = presence_intervals(
            restartable.database_url, lesson_key=lesson_key, user_id=pupil.id
        )
        # The interval before the restart is kept, closed where the relay last saw the pupil: at
        # the restart, or at the last heartbeat before it.
        assert before.left_at is not None
        assert before.left_at == before.last_seen_at
        assert before.joined_at <= before.left_at <= stopped_at
        assert stopping_at - before.left_at <= HEARTBEAT + SLACK
        # The one after is open: the pupil is still here.
        assert after.joined_at >= started_at
        assert after.left_at is None
    finally:
        for member in (teacher, pupil):
            member.context.close()
