"""The lesson websocket, through the real ASGI application (Origin check, session auth, routing).

Users log in with a real session: the test client's `force_login` writes it, and the socket sends
its cookie, as a browser on the lesson page would. Rows are made in sync fixtures and committed
(`transaction=True`), so the consumer's own database thread sees them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import Membership, User
from classrooms.models import Lesson, LessonState
from config.asgi import application
from media_relay.signalling import MAX_FRAME_BYTES
from tests.factories import (
    LessonFactory,
    SchoolClassFactory,
    admin_of,
    lesson_now,
    pupil_of,
    teacher_of,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = b"http://127.0.0.1"
TIMEOUT = 3


@dataclass
class Lessons:
    """One school with class A (taught now) and class B, and a second school with class C."""

    live: Lesson
    later: Lesson
    teacher: User
    pupil: User
    pupil_of_other_class: User
    pupil_of_other_school: User
    admin: User


@pytest.fixture
def lessons() -> Lessons:
    class_a = SchoolClassFactory.create(name="5A Maths")
    class_b = SchoolClassFactory.create(school=class_a.school, name="5B Maths")
    class_c = SchoolClassFactory.create(name="5C Maths")
    live = lesson_now(class_a, title="Fractions", state=LessonState.LIVE)
    return Lessons(
        live=live,
        later=LessonFactory.create(
            school_class=class_a, starts_at=timezone.now() + timedelta(hours=2)
        ),
        teacher=teacher_of(class_a, given_name="Paul", family_name="Lefèvre"),
        pupil=pupil_of(class_a, given_name="Léa", family_name="Martin"),
        pupil_of_other_class=pupil_of(class_b),
        pupil_of_other_school=pupil_of(class_c),
        admin=admin_of(class_a.school),
    )


def session_cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


def communicator_for(key: str, cookie: bytes | None = None, origin: bytes | None = ORIGIN):
    headers = [(b"host", b"127.0.0.1")]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, f"/ws/lessons/{key}/", headers=headers)


@pytest_asyncio.fixture
async def sockets() -> AsyncIterator[list[WebsocketCommunicator]]:
    """Sockets opened by a test; each is disconnected when the test ends."""
    opened: list[WebsocketCommunicator] = []
    yield opened
    for communicator in opened:
        # A consumer that crashed re-raises here; the test that made it crash already failed.
        with contextlib.suppress(Exception):
            await communicator.disconnect(timeout=TIMEOUT)


async def open_socket(sockets, key: str, cookie: bytes | None = None, origin=ORIGIN):
    communicator = communicator_for(key, cookie, origin)
    sockets.append(communicator)
    return communicator, await communicator.connect(timeout=TIMEOUT)


async def close_code(communicator: WebsocketCommunicator) -> int:
    """The code the server closed with, after it accepted (to reach the browser as a code)."""
    message = await communicator.receive_output(timeout=TIMEOUT)
    assert message["type"] == "websocket.close", message
    code: int = message["code"]
    return code


async def joined(
    sockets, lesson: Lesson, user: User
) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    cookie = await database_sync_to_async(session_cookie)(user)
    communicator, (accepted, _) = await open_socket(sockets, lesson.key, cookie)
    assert accepted
    hello = await communicator.receive_json_from(timeout=TIMEOUT)
    return communicator, hello


async def assert_still_answers_ping(communicator: WebsocketCommunicator) -> None:
    await communicator.send_json_to({"v": 1, "type": "ping"})
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {"v": 1, "type": "pong"}


# --- Who gets in ---------------------------------------------------------------------------------


async def test_an_anonymous_visitor_is_closed_with_4403(lessons, sockets):
    communicator, (accepted, _) = await open_socket(sockets, lessons.live.key)
    assert accepted
    assert await close_code(communicator) == 4403


@pytest.mark.parametrize(
    "who",
    ["pupil_of_other_school", "pupil_of_other_class", "admin"],
    ids=["a pupil of another school", "a pupil not on the roster", "the school admin"],
)
async def test_someone_not_on_the_roster_is_closed_with_4403(lessons, sockets, who):
    cookie = await database_sync_to_async(session_cookie)(getattr(lessons, who))
    communicator, (accepted, _) = await open_socket(sockets, lessons.live.key, cookie)
    assert accepted
    assert await close_code(communicator) == 4403


async def test_an_unknown_key_is_closed_with_4403_like_a_foreign_lesson(lessons, sockets):
    cookie = await database_sync_to_async(session_cookie)(lessons.pupil)
    communicator, _ = await open_socket(sockets, "no-such-lesson-key", cookie)
    assert await close_code(communicator) == 4403


@pytest.mark.parametrize(
    "key", ["%00", "x" * 2000, "%F0%9F%8E%93"], ids=["a NUL byte", "a very long key", "an emoji"]
)
async def test_a_hostile_key_is_closed_with_4403(lessons, sockets, key):
    cookie = await database_sync_to_async(session_cookie)(lessons.pupil)
    communicator, _ = await open_socket(sockets, key, cookie)
    assert await close_code(communicator) == 4403


async def test_a_deactivated_user_s_session_is_closed_with_4403(lessons, sockets):
    cookie = await database_sync_to_async(session_cookie)(lessons.pupil)
    lessons.pupil.is_active = False
    await database_sync_to_async(lessons.pupil.save)()
    communicator, _ = await open_socket(sockets, lessons.live.key, cookie)
    assert await close_code(communicator) == 4403


async def test_a_pupil_whose_membership_was_removed_is_closed_with_4403(lessons, sockets):
    cookie = await database_sync_to_async(session_cookie)(lessons.pupil)
    await database_sync_to_async(Membership.objects.filter(user=lessons.pupil).delete)()
    communicator, _ = await open_socket(sockets, lessons.live.key, cookie)
    assert await close_code(communicator) == 4403


async def test_a_pupil_on_the_roster_is_welcomed_with_their_roster_name(lessons, sockets):
    _, hello = await joined(sockets, lessons.live, lessons.pupil)
    assert hello == {
        "v": 1,
        "type": "hello",
        "lesson": {"key": lessons.live.key, "title": "Fractions"},
        "you": {"name": "Léa Martin", "role": "pupil"},
        "endsAt": lessons.live.ends_at.isoformat(),
    }


async def test_the_teacher_is_welcomed_as_teacher(lessons, sockets):
    _, hello = await joined(sockets, lessons.live, lessons.teacher)
    assert hello["type"] == "hello"
    assert hello["you"] == {"name": "Paul Lefèvre", "role": "teacher"}


async def test_a_lesson_that_is_not_open_yet_is_closed_with_4409(lessons, sockets):
    cookie = await database_sync_to_async(session_cookie)(lessons.pupil)
    communicator, (accepted, _) = await open_socket(sockets, lessons.later.key, cookie)
    assert accepted
    assert await close_code(communicator) == 4409


async def test_a_cancelled_lesson_is_closed_with_4409(lessons, sockets):
    lessons.live.state = LessonState.CANCELLED
    await database_sync_to_async(lessons.live.save)()
    cookie = await database_sync_to_async(session_cookie)(lessons.pupil)
    communicator, _ = await open_socket(sockets, lessons.live.key, cookie)
    assert await close_code(communicator) == 4409


@pytest.mark.parametrize(
    "origin",
    [b"http://evil.example", b"http://127.0.0.1.evil.example", None],
    ids=["another site", "a look-alike host", "no Origin header"],
)
async def test_a_socket_from_a_foreign_origin_is_rejected_before_accept(lessons, sockets, origin):
    cookie = await database_sync_to_async(session_cookie)(lessons.pupil)
    _, (accepted, _) = await open_socket(sockets, lessons.live.key, cookie, origin)
    assert not accepted


async def test_a_refused_socket_ignores_what_it_is_sent(lessons, sockets):
    communicator, _ = await open_socket(sockets, lessons.live.key)
    assert await close_code(communicator) == 4403
    await communicator.send_json_to({"v": 1, "type": "ping"})
    assert await communicator.receive_nothing(timeout=0.2)


# --- What it says --------------------------------------------------------------------------------


async def test_ping_gets_pong(lessons, sockets):
    communicator, _ = await joined(sockets, lessons.live, lessons.pupil)
    await assert_still_answers_ping(communicator)


HOSTILE_FRAMES = [
    pytest.param("text", "not json at all", {"bad-json"}, id="not JSON"),
    pytest.param("text", "[1, 2, 3]", {"bad-message"}, id="not an object"),
    pytest.param("text", '{"v": 2, "type": "ping"}', {"bad-version"}, id="the wrong version"),
    pytest.param("text", '{"v": 1, "type": "launch"}', {"unknown-type"}, id="an unknown type"),
    pytest.param(
        "text",
        '{"v": 1, "type": "ping", "pad": "' + "x" * MAX_FRAME_BYTES + '"}',
        {"too-large"},
        id="a frame over 64 KiB",
    ),
    pytest.param("bytes", b"\x00\x01binary", {"bad-message"}, id="a binary frame"),
    # 50,000 brackets fit under the size cap but not in the JSON parser's recursion limit.
    pytest.param("text", "[" * 50_000, {"bad-json", "bad-message"}, id="deeply nested JSON"),
]


@pytest.mark.parametrize(("kind", "frame", "codes"), HOSTILE_FRAMES)
async def test_a_hostile_frame_gets_an_error_and_the_socket_stays_open(
    lessons, sockets, kind, frame, codes
):
    communicator, _ = await joined(sockets, lessons.live, lessons.pupil)
    if kind == "text":
        await communicator.send_to(text_data=frame)
    else:
        await communicator.send_to(bytes_data=frame)
    reply = await communicator.receive_json_from(timeout=TIMEOUT)
    assert reply["v"] == 1
    assert reply["type"] == "error"
    assert reply["code"] in codes
    assert isinstance(reply["detail"], str)
    await assert_still_answers_ping(communicator)


async def test_error_replies_name_what_was_wrong(lessons, sockets):
    communicator, _ = await joined(sockets, lessons.live, lessons.pupil)
    for frame, code in [
        ("nope", "bad-json"),
        ('"a string"', "bad-message"),
        ('{"v": 0, "type": "ping"}', "bad-version"),
        ('{"v": 1, "type": "offer"}', "unknown-type"),
    ]:
        await communicator.send_to(text_data=frame)
        reply = json.loads(await communicator.receive_from(timeout=TIMEOUT))
        assert (reply["type"], reply["code"]) == ("error", code)
    await assert_still_answers_ping(communicator)
