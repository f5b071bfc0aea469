"""The lesson websocket, through the real ASGI application (Origin check, session auth, routing).

Users log in with a real session: the test client's `force_login` writes it, and the socket sends
its cookie, as a browser on the lesson page would. Rows are made in sync fixtures and committed
(`transaction=True`), so the consumer's own database thread sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from accounts.models import Membership, User
from classrooms.models import Lesson, LessonState
from media_relay import consumers, ports
from media_relay.api import lesson_close
from media_relay.ports import Admission, Refusal
from media_relay.rooms import SNAPSHOT_SECONDS
from media_relay.signalling import MAX_FRAME_BYTES
from tests.factories import (
    LessonFactory,
    SchoolClassFactory,
    admin_of,
    lesson_now,
    pupil_of,
    teacher_of,
)
from tests.media_relay.conftest import (
    ORIGIN,
    TIMEOUT,
    communicator_for,
    disconnect_all,
    session_cookie,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@dataclass
class Lessons:
    """One school with class A (taught now) and class B, and a second school with class C."""

    live: Lesson
    later: Lesson
    teacher: User
    pupil: User
    classmate: User
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
        classmate=pupil_of(class_a, given_name="Tom", family_name="Thumb"),
        pupil_of_other_class=pupil_of(class_b),
        pupil_of_other_school=pupil_of(class_c),
        admin=admin_of(class_a.school),
    )


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


async def next_of(communicator: WebsocketCommunicator, kind: str) -> dict[str, Any]:
    """The next message of this type, skipping others (snapshots come after every change)."""
    while True:
        message: dict[str, Any] = await communicator.receive_json_from(timeout=TIMEOUT)
        if message["type"] == kind:
            return message


async def closed_with(communicator: WebsocketCommunicator) -> int:
    """The close code, after whatever messages came before it."""
    while True:
        output = await communicator.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            code: int = output["code"]
            return code


async def assert_still_answers_ping(communicator: WebsocketCommunicator) -> None:
    await communicator.send_json_to({"v": 1, "type": "ping"})
    assert await next_of(communicator, "pong") == {"v": 1, "type": "pong"}


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
        "you": {"id": str(lessons.pupil.pk), "name": "Léa Martin", "role": "pupil"},
        "endsAt": lessons.live.ends_at.isoformat(),
        "state": "lobby",
        "slots": {"audio": hello["slots"]["audio"], "video": hello["slots"]["video"]},
        "iceServers": [],
    }
    assert all(isinstance(count, int) for count in hello["slots"].values())


async def test_the_teacher_is_welcomed_as_teacher_and_in(lessons, sockets):
    _, hello = await joined(sockets, lessons.live, lessons.teacher)
    assert hello["type"] == "hello"
    assert hello["you"] == {
        "id": str(lessons.teacher.pk),
        "name": "Paul Lefèvre",
        "role": "teacher",
    }
    assert hello["state"] == "in"


async def test_hello_names_the_configured_ice_servers(lessons, sockets, settings):
    settings.HOMEROOM_ICE_SERVERS = [{"urls": "stun:stun.example.org:3478"}]
    _, hello = await joined(sockets, lessons.live, lessons.teacher)
    assert hello["iceServers"] == [{"urls": "stun:stun.example.org:3478"}]


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
        id="a frame over the size cap",
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
    reply = await next_of(communicator, "error")
    assert reply["v"] == 1
    assert reply["code"] in codes
    assert isinstance(reply["detail"], str)
    await assert_still_answers_ping(communicator)


async def test_error_replies_name_what_was_wrong(lessons, sockets):
    communicator, _ = await joined(sockets, lessons.live, lessons.pupil)
    for frame, code in [
        ("nope", "bad-json"),
        ('"a string"', "bad-message"),
        ('{"v": 0, "type": "ping"}', "bad-version"),
        ('{"v": 1, "type": "launch"}', "unknown-type"),
        ('{"v": 1, "type": "offer"}', "bad-message"),
        ('{"v": 1, "type": "mute", "participant": 42}', "bad-message"),
    ]:
        await communicator.send_to(text_data=frame)
        reply = await next_of(communicator, "error")
        assert reply["code"] == code
    await assert_still_answers_ping(communicator)


# --- The room, through the socket ----------------------------------------------------------------


async def say(communicator: WebsocketCommunicator, kind: str, **body: Any) -> None:
    await communicator.send_json_to({"v": 1, "type": kind, **body})


async def settled(*communicators: WebsocketCommunicator) -> None:
    """Read each socket up to a pong: everything the server sent before it has been read."""
    for communicator in communicators:
        await assert_still_answers_ping(communicator)


async def quiet(*communicators: WebsocketCommunicator) -> None:
    """Read each socket until the server has nothing more to say, snapshots included.

    Snapshots are coalesced (one round per `SNAPSHOT_SECONDS` at most), so a change's snapshot
    may come after the pong that answers a later ping: wait for the round, then read it.
    """
    await settled(*communicators)
    await asyncio.sleep(SNAPSHOT_SECONDS * 1.5)
    for communicator in communicators:
        while not await communicator.receive_nothing(timeout=0.05):
            await communicator.receive_output(timeout=TIMEOUT)


def member(snapshot: dict[str, Any], user: User) -> dict[str, Any]:
    return next(p for p in snapshot["participants"] if p["id"] == str(user.pk))


async def class_in_session(sockets, lessons) -> tuple[WebsocketCommunicator, WebsocketCommunicator]:
    """The teacher, then Léa, both in the lesson."""
    teacher, _ = await joined(sockets, lessons.live, lessons.teacher)
    pupil, hello = await joined(sockets, lessons.live, lessons.pupil)
    assert hello["state"] == "in"
    await settled(teacher, pupil)
    return teacher, pupil


async def test_a_pupil_waits_in_the_lobby_until_a_teacher_connects(lessons, sockets):
    pupil, hello = await joined(sockets, lessons.live, lessons.pupil)
    assert hello["state"] == "lobby"
    assert (await next_of(pupil, "lobby"))["reason"] == "waiting-for-teacher"
    await joined(sockets, lessons.live, lessons.teacher)
    admitted = await next_of(pupil, "admitted")
    assert set(admitted["slots"]) == {"audio", "video"}
    assert (await next_of(pupil, "chat-history"))["messages"] == []
    snapshot = await next_of(pupil, "room")
    assert member(snapshot, lessons.pupil)["state"] == "in"
    assert snapshot["teacherPresent"] is True


async def test_a_locked_lesson_holds_new_pupils_until_admitted_or_denied(lessons, sockets):
    teacher, _ = await class_in_session(sockets, lessons)
    await say(teacher, "lock", on=True)
    assert (await next_of(teacher, "room"))["locked"] is True
    classmate, hello = await joined(sockets, lessons.live, lessons.classmate)
    assert hello["state"] == "lobby"
    assert (await next_of(classmate, "lobby"))["reason"] == "locked"
    waiting = await next_of(teacher, "room")
    assert member(waiting, lessons.classmate)["state"] == "lobby"
    await say(teacher, "admit", participant=str(lessons.classmate.pk))
    await next_of(classmate, "admitted")
    await say(teacher, "remove", participant=str(lessons.classmate.pk))
    assert await closed_with(classmate) == 4410
    await say(teacher, "readmit", participant=str(lessons.classmate.pk))
    await settled(teacher)
    again, hello = await joined(sockets, lessons.live, lessons.classmate)
    assert hello["state"] == "lobby"
    await say(teacher, "deny", participant=str(lessons.classmate.pk))
    assert await closed_with(again) == 4411


TEACHER_MESSAGES = [
    pytest.param({"type": "mute", "all": True}, id="mute all"),
    pytest.param({"type": "mute", "participant": "CLASSMATE"}, id="mute"),
    pytest.param(
        {"type": "grant", "participant": "CLASSMATE", "source": "mic", "on": True}, id="grant"
    ),
    pytest.param({"type": "admit", "participant": "CLASSMATE"}, id="admit"),
    pytest.param({"type": "deny", "participant": "CLASSMATE"}, id="deny"),
    pytest.param({"type": "remove", "participant": "CLASSMATE"}, id="remove"),
    pytest.param({"type": "readmit", "participant": "CLASSMATE"}, id="readmit"),
    pytest.param({"type": "lock", "on": True}, id="lock"),
    pytest.param({"type": "lower-hand", "all": True}, id="lower-hand"),
    pytest.param({"type": "chat-delete", "id": 1}, id="chat-delete"),
    pytest.param({"type": "end"}, id="end"),
]


@pytest.mark.parametrize("frame", TEACHER_MESSAGES)
async def test_a_pupil_sending_a_teacher_message_is_forbidden_and_nothing_changes(
    lessons, sockets, frame
):
    teacher, pupil = await class_in_session(sockets, lessons)
    classmate, _ = await joined(sockets, lessons.live, lessons.classmate)
    await say(classmate, "hand", up=True)
    await quiet(classmate, teacher, pupil)
    body = {
        key: str(lessons.classmate.pk) if value == "CLASSMATE" else value
        for key, value in frame.items()
    }
    await pupil.send_json_to({"v": 1, **body})
    refusal = await next_of(pupil, "error")
    assert refusal["code"] == "forbidden"
    assert await teacher.receive_nothing(timeout=0.2), "no snapshot: nothing changed"
    await settled(teacher, pupil, classmate)
    lesson = await database_sync_to_async(Lesson.objects.get)(pk=lessons.live.pk)
    assert lesson.state == LessonState.LIVE


async def test_a_teacher_grants_and_mutes_a_pupil_s_microphone(lessons, sockets):
    teacher, pupil = await class_in_session(sockets, lessons)
    await say(pupil, "media", mic=True, camera=False)
    assert (await next_of(pupil, "error"))["code"] == "not-granted"
    await say(teacher, "grant", participant=str(lessons.pupil.pk), source="mic", on=True)
    assert (await next_of(pupil, "notice"))["code"] == "granted-mic"
    await say(pupil, "media", mic=True, camera=False)
    await settled(pupil)
    snapshot = await next_of(teacher, "room")
    while member(snapshot, lessons.pupil)["mic"]["on"] is not True:
        snapshot = await next_of(teacher, "room")
    await say(teacher, "mute", participant=str(lessons.pupil.pk))
    assert (await next_of(pupil, "notice"))["code"] == "muted"
    assert member(await next_of(pupil, "room"), lessons.pupil)["mic"] == {
        "granted": True,
        "on": False,
    }


async def test_a_removed_pupil_is_closed_within_a_second_and_kept_out_until_readmitted(
    lessons, sockets
):
    teacher, pupil = await class_in_session(sockets, lessons)
    pupil_id = str(lessons.pupil.pk)
    started = asyncio.get_running_loop().time()
    await say(teacher, "remove", participant=pupil_id)
    assert await closed_with(pupil) == 4410
    assert asyncio.get_running_loop().time() - started < 1
    snapshot = await next_of(teacher, "room")
    assert snapshot["removed"] == [{"id": pupil_id, "name": "Léa Martin"}]
    await settled(teacher)
    cookie = await database_sync_to_async(session_cookie)(lessons.pupil)
    refused, _ = await open_socket(sockets, lessons.live.key, cookie)
    assert await close_code(refused) == 4410
    await say(teacher, "readmit", participant=pupil_id)
    await settled(teacher)
    _, hello = await joined(sockets, lessons.live, lessons.pupil)
    assert hello["state"] == "in"


async def test_ending_the_lesson_closes_everyone_with_4412_and_it_stays_closed(lessons, sockets):
    teacher, pupil = await class_in_session(sockets, lessons)
    await say(teacher, "end")
    assert await closed_with(teacher) == 4412
    assert await closed_with(pupil) == 4412
    cookie = await database_sync_to_async(session_cookie)(lessons.pupil)
    late, _ = await open_socket(sockets, lessons.live.key, cookie)
    assert await close_code(late) == 4409


async def test_the_web_tier_closes_a_lesson_s_room_through_the_api(lessons, sockets):
    teacher, pupil = await class_in_session(sockets, lessons)
    await sync_to_async(lesson_close)(lesson_key=lessons.live.key)
    assert await closed_with(teacher) == 4412
    assert await closed_with(pupil) == 4412


async def test_chat_reaches_everyone_is_kept_and_a_teacher_deletes_it(lessons, sockets):
    teacher, pupil = await class_in_session(sockets, lessons)
    await say(pupil, "chat", body="Is it three quarters?")
    line = (await next_of(teacher, "chat"))["message"]
    assert line["body"] == "Is it three quarters?"
    assert line["from"] == {"id": str(lessons.pupil.pk), "name": "Léa Martin"}
    assert (await next_of(pupil, "chat"))["message"] == line
    await pupil.disconnect(timeout=TIMEOUT)
    pupil, _ = await joined(sockets, lessons.live, lessons.pupil)
    assert (await next_of(pupil, "chat-history"))["messages"] == [line]
    await say(teacher, "chat-delete", id=line["id"])
    assert (await next_of(pupil, "chat-deleted"))["id"] == line["id"]
    classmate, _ = await joined(sockets, lessons.live, lessons.classmate)
    assert (await next_of(classmate, "chat-history"))["messages"] == []


async def test_raised_hands_queue_in_order_and_the_teacher_lowers_them(lessons, sockets):
    teacher, pupil = await class_in_session(sockets, lessons)
    classmate, _ = await joined(sockets, lessons.live, lessons.classmate)
    await say(classmate, "hand", up=True)
    # The classmate's snapshot may come after a pong (snapshots are coalesced): read it first.
    await quiet(classmate, pupil)
    await say(pupil, "hand", up=True)
    snapshot = await next_of(pupil, "room")
    assert snapshot["hands"] == [str(lessons.classmate.pk), str(lessons.pupil.pk)]
    assert member(snapshot, lessons.pupil)["hand"] == 2
    await say(teacher, "lower-hand", all=True)
    assert (await next_of(pupil, "notice"))["code"] == "hands-cleared"
    assert (await next_of(pupil, "room"))["hands"] == []


async def test_a_second_tab_replaces_the_first_with_4000_and_keeps_grants(lessons, sockets):
    teacher, pupil = await class_in_session(sockets, lessons)
    await say(teacher, "grant", participant=str(lessons.pupil.pk), source="camera", on=True)
    await next_of(pupil, "notice")
    second, hello = await joined(sockets, lessons.live, lessons.pupil)
    assert await closed_with(pupil) == 4000
    assert hello["state"] == "in"
    snapshot = await next_of(second, "room")
    assert member(snapshot, lessons.pupil)["camera"]["granted"] is True
    await assert_still_answers_ping(second)


async def test_grants_come_back_after_everyone_left_and_rejoined(lessons, sockets):
    teacher, pupil = await class_in_session(sockets, lessons)
    await say(teacher, "grant", participant=str(lessons.pupil.pk), source="screen", on=True)
    await next_of(pupil, "notice")
    await settled(teacher)
    await pupil.disconnect(timeout=TIMEOUT)
    await teacher.disconnect(timeout=TIMEOUT)
    assert consumers.registry.get(lessons.live.key) is None
    await joined(sockets, lessons.live, lessons.teacher)
    pupil, _ = await joined(sockets, lessons.live, lessons.pupil)
    snapshot = await next_of(pupil, "room")
    assert member(snapshot, lessons.pupil)["screen"] == {"granted": True, "on": False}


async def test_a_socket_that_floods_is_closed_with_4429_and_logged(lessons, sockets, caplog):
    teacher, pupil = await class_in_session(sockets, lessons)
    for _ in range(60):
        await say(pupil, "ping")
    assert await closed_with(pupil) == 4429
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(
        lessons.live.key in message and str(lessons.pupil.pk) in message for message in warnings
    )
    await assert_still_answers_ping(teacher)


# --- What a socket may cost the server -----------------------------------------------------------


async def test_a_user_who_reconnects_in_a_loop_is_closed_with_4429_before_any_query(
    lessons, sockets, monkeypatch
):
    cookie = await database_sync_to_async(session_cookie)(lessons.pupil)
    for _ in range(consumers.CONNECT_BURST):
        communicator, _ = await open_socket(sockets, lessons.live.key, cookie)
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
        await communicator.disconnect(timeout=TIMEOUT)
    policy = ports.lesson_access_policy()
    asked: list[int] = []

    class CountingPolicy:
        def admit(self, *, user_id: int, lesson_key: str) -> Admission | Refusal:
            asked.append(user_id)
            return policy.admit(user_id=user_id, lesson_key=lesson_key)

    monkeypatch.setattr(consumers, "lesson_access_policy", CountingPolicy)
    refused, (accepted, _) = await open_socket(sockets, lessons.live.key, cookie)
    assert accepted
    assert await close_code(refused) == 4429
    assert asked == [], "refused before the database was asked"
    _, hello = await joined(sockets, lessons.live, lessons.classmate)
    assert hello["type"] == "hello", "the limit is per user"


async def test_the_connect_allowance_refills_at_one_every_two_seconds():
    limiter = consumers.ConnectLimiter()
    assert [limiter.allow(7, 100.0) for _ in range(6)] == [True] * 5 + [False]
    assert limiter.allow(7, 101.0) is False
    assert limiter.allow(7, 102.0) is True
    assert limiter.allow(8, 102.0) is True


async def test_a_table_of_connects_forgets_users_whose_allowance_is_full_again():
    limiter = consumers.ConnectLimiter()
    for user_id in range(consumers.CONNECT_TABLE_PRUNE_AT + 1):
        limiter.allow(user_id, 0.0)
    limiter.allow(-1, 60.0)
    assert limiter.allow(0, 60.0) is True
    assert len(limiter._buckets) == 2


async def test_an_outbox_that_is_not_drained_closes_its_socket_with_4408_and_logs_it(caplog):
    outbox = consumers.Outbox(lesson_key="FractionsLessonKey01", user_id=42, limit=256)
    for n in range(256):
        outbox.send(f"message {n}")
    assert outbox.queue.qsize() == 256
    outbox.send("one too many")
    outbox.send("and more")
    assert outbox.queue.qsize() == 1
    assert outbox.queue.get_nowait() == 4408
    assert any(
        "FractionsLessonKey01" in r.getMessage() and "42" in r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING"
    )


async def test_a_socket_that_reads_too_slowly_is_closed_with_4408(lessons, sockets, monkeypatch):
    monkeypatch.setattr(consumers, "OUTBOX_LIMIT", 3)
    send = consumers.LessonConsumer.send

    async def slow_send(self: consumers.LessonConsumer, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.05)
        await send(self, *args, **kwargs)

    monkeypatch.setattr(consumers.LessonConsumer, "send", slow_send)
    teacher, _ = await joined(sockets, lessons.live, lessons.teacher)
    for _ in range(10):
        await say(teacher, "ping")
    assert await closed_with(teacher) == 4408


async def test_sockets_whose_application_was_cancelled_are_closed_quietly(lessons):
    """After a receive times out, asgiref has cancelled the application: teardown must not raise."""
    opened: list[WebsocketCommunicator] = []
    communicator, _ = await joined(opened, lessons.live, lessons.pupil)
    with contextlib.suppress(TimeoutError):
        while True:
            await communicator.receive_output(timeout=0.2)
    assert communicator.future.cancelled()
    await disconnect_all(opened)
