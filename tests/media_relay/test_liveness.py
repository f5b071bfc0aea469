"""The lesson websocket gives up on a silent client: a vanished browser leaves within seconds.

The page pings every 5 s; a socket that sends nothing for `LessonConsumer.silent_after` seconds
(15 in production, shortened here) is closed with 4001, and its participant's peer connection and
presence end then, without waiting for the socket's close to complete. Sockets go through the real
ASGI application; the peer connection is played by a forwarder that only remembers (no aiortc), and
presence is written by the school's recorder to the database.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.models import User
from classrooms.models import Lesson, LessonState, PresenceInterval
from media_relay import consumers
from tests.factories import SchoolClassFactory, lesson_now, pupil_of, teacher_of
from tests.media_relay.conftest import TIMEOUT, communicator_for, session_cookie
from tests.media_relay.room_fakes import SpyForwarder

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

SILENT_AFTER = 0.5


@dataclass
class Classroom:
    lesson: Lesson
    teacher: User
    pupil: User


@pytest.fixture
def classroom() -> Classroom:
    school_class = SchoolClassFactory.create(name="5B Maths")
    return Classroom(
        lesson=lesson_now(school_class, title="Fractions", state=LessonState.LIVE),
        teacher=teacher_of(school_class),
        pupil=pupil_of(school_class),
    )


@pytest.fixture
def forwarders(monkeypatch: pytest.MonkeyPatch) -> list[SpyForwarder]:
    """The rooms' forwarders, which only remember; a test plays the peer connections with them."""
    built: list[SpyForwarder] = []

    def build(**kwargs: Any) -> SpyForwarder:
        built.append(SpyForwarder(**kwargs))
        return built[-1]

    monkeypatch.setattr(consumers, "forwarder_factory", build)
    monkeypatch.setattr(consumers.LessonConsumer, "silent_after", SILENT_AFTER)
    return built


async def joined(sockets: list[WebsocketCommunicator], lesson: Lesson, user: User) -> Any:
    cookie = await database_sync_to_async(session_cookie)(user)
    communicator = communicator_for(lesson.key, cookie)
    sockets.append(communicator)
    accepted, _ = await communicator.connect(timeout=TIMEOUT)
    assert accepted
    hello = await communicator.receive_json_from(timeout=TIMEOUT)
    assert hello["type"] == "hello"
    return communicator


async def next_of(communicator: WebsocketCommunicator, kind: str) -> dict[str, Any]:
    """The next message of this type, skipping others; fails if the socket closes first."""
    while True:
        output = await communicator.receive_output(timeout=TIMEOUT)
        assert output["type"] == "websocket.send", output
        message: dict[str, Any] = json.loads(output["text"])
        if message["type"] == kind:
            return message


async def ping_pong(communicator: WebsocketCommunicator) -> None:
    await communicator.send_json_to({"v": 1, "type": "ping"})
    await next_of(communicator, "pong")


async def keep_pinging(communicator: WebsocketCommunicator, *, every: float) -> None:
    while True:
        await ping_pong(communicator)
        await asyncio.sleep(every)


async def closed_with(communicator: WebsocketCommunicator) -> int:
    while True:
        output = await communicator.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            code: int = output["code"]
            return code


Presence = list[tuple[datetime, datetime | None]]


@database_sync_to_async
def presence_of(lesson: Lesson, user: User) -> Presence:
    """The user's presence intervals in the lesson: (joined, left or None while open)."""
    return list(
        PresenceInterval.objects.filter(lesson=lesson, user=user).values_list(
            "joined_at", "left_at"
        )
    )


async def presence_once(
    lesson: Lesson, user: User, condition: Callable[[Presence], bool]
) -> Presence:
    """The user's presence once `condition` holds (the recorder writes in the background)."""
    deadline = time.monotonic() + TIMEOUT
    while not condition(presence := await presence_of(lesson, user)):
        assert time.monotonic() < deadline, f"presence is still {presence}"
        await asyncio.sleep(0.02)
    return presence


async def test_a_silent_socket_is_closed_with_4001_and_its_peer_and_presence_end(
    classroom, sockets, forwarders
):
    teacher = await joined(sockets, classroom.lesson, classroom.teacher)
    pinging = asyncio.create_task(keep_pinging(teacher, every=SILENT_AFTER / 5))
    try:
        pupil = await joined(sockets, classroom.lesson, classroom.pupil)
        heard_last = time.monotonic()
        pupil_id = str(classroom.pupil.pk)
        # The pupil's peer connection comes up: attendance opens a presence.
        forwarders[0].on_peer_state(pupil_id, "connected")
        [(_, left)] = await presence_once(classroom.lesson, classroom.pupil, bool)
        assert left is None

        assert await closed_with(pupil) == consumers.SILENT
        closed_at = datetime.now(UTC)
        silent_for = time.monotonic() - heard_last
        assert SILENT_AFTER <= silent_for < SILENT_AFTER + 2.0
        assert forwarders[0].removed == [pupil_id]
        [(_, left)] = await presence_once(
            classroom.lesson, classroom.pupil, lambda presence: presence[0][1] is not None
        )
        assert left is not None
        # The presence ends when the pupil was last heard, not when the silence was noticed.
        assert left <= closed_at - timedelta(seconds=SILENT_AFTER * 0.9)
        assert not pinging.done(), "the pinging teacher's socket was closed too"
    finally:
        pinging.cancel()
        await asyncio.gather(pinging, return_exceptions=True)


async def test_a_pinging_socket_stays_open_long_past_the_silence_limit(
    classroom, sockets, forwarders
):
    teacher = await joined(sockets, classroom.lesson, classroom.teacher)
    started = time.monotonic()
    while time.monotonic() - started < 4 * SILENT_AFTER:
        await ping_pong(teacher)
        await asyncio.sleep(SILENT_AFTER / 3)
    assert forwarders[0].removed == []
    # Then it falls silent too, and is given up on.
    assert await closed_with(teacher) == consumers.SILENT


async def test_any_frame_counts_as_being_heard_even_a_refused_one(classroom, sockets, forwarders):
    teacher = await joined(sockets, classroom.lesson, classroom.teacher)
    started = time.monotonic()
    while time.monotonic() - started < 3 * SILENT_AFTER:
        await teacher.send_to(text_data="not json")
        error = await next_of(teacher, "error")
        assert error["code"] == "bad-json"
        await asyncio.sleep(SILENT_AFTER / 3)
    await ping_pong(teacher)


async def test_the_page_is_given_three_missed_pings_by_default():
    assert consumers.LessonConsumer.silent_after == consumers.SILENT_AFTER_SECONDS == 15.0
