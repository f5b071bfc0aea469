"""A live lesson end to end without a browser: synthetic aiortc participants on real sockets.

Each participant speaks the signalling protocol through the real ASGI application (session
cookies, the roster's access policy, the school's recorder) and holds one aiortc peer connection
with the real forwarding relay, acting as the class page does: it offers, applies the answer, adds
receive slots when asked and offers again. What reaches each receive slot is counted at the
receiver, so "not forwarded" is measured where it matters: no frame arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.models import User
from classrooms.models import Lesson, LessonState, PresenceInterval
from tests.factories import SchoolClassFactory, lesson_now, pupil_of, teacher_of
from tests.media_relay.conftest import close_database_thread, communicator_for, session_cookie
from tests.media_relay.peers import SyntheticParticipant, wait_for

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

TIMEOUT = 5
MEDIA_WITHIN = 20.0


@dataclass
class Classroom:
    lesson: Lesson
    teacher: User
    ada: User
    bob: User


@pytest.fixture
def classroom() -> Classroom:
    school_class = SchoolClassFactory.create(name="5B Maths")
    return Classroom(
        lesson=lesson_now(school_class, title="Fractions", state=LessonState.LIVE),
        teacher=teacher_of(school_class, given_name="Paul", family_name="Lefèvre"),
        ada=pupil_of(school_class, given_name="Ada", family_name="Lovelace"),
        bob=pupil_of(school_class, given_name="Bob", family_name="Marley"),
    )


@dataclass
class Client:
    """One participant's page: a socket, a peer connection, and what the server told it."""

    user: User
    socket: WebsocketCommunicator
    hello: dict[str, Any]
    peer: SyntheticParticipant | None = None
    tracks: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    wanted: tuple[int, int] = (0, 0)
    negotiating: bool = False
    closed_with: int | None = None
    reader: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return str(self.user.pk)

    async def say(self, kind: str, **body: Any) -> None:
        await self.socket.send_json_to({"v": 1, "type": kind, **body})

    async def go_live(self) -> None:
        """Switch on, build the peer connection and offer, as the page does once it is in."""
        slots = self.hello["slots"]
        self.wanted = (slots["audio"], slots["video"])
        self.peer = SyntheticParticipant(
            self.id, audio_slots=slots["audio"], video_slots=slots["video"]
        )
        await self.say("media", mic=True, camera=True)
        await self._offer()

    async def _offer(self) -> None:
        assert self.peer is not None
        have_audio = sum(1 for t in self.peer.receptions if t.kind == "audio")
        have_video = sum(1 for t in self.peer.receptions if t.kind == "video")
        self.peer.add_slots(
            audio=max(0, self.wanted[0] - have_audio), video=max(0, self.wanted[1] - have_video)
        )
        self.negotiating = True
        sdp, sources = await self.peer.offer()
        await self.say("offer", sdp=sdp, sources=sources)

    async def read(self) -> None:
        while True:
            output = await self.socket.receive_output(timeout=120)
            if output["type"] == "websocket.close":
                self.closed_with = output["code"]
                return
            await self._handle(json.loads(output["text"]))

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "answer" and self.peer is not None:
            await self.peer.accept(message["sdp"])
            self.negotiating = False
            if self._needs_slots():
                await self._offer()
        elif kind == "slots":
            self.wanted = (message["audio"], message["video"])
            if self.peer is not None and not self.negotiating and self._needs_slots():
                await self._offer()
        elif kind == "tracks":
            self.tracks = message["mids"]
        elif kind == "error":
            self.errors.append(message["code"])
            if message["code"] == "bad-sdp":
                self.negotiating = False
        elif kind == "notice":
            self.notices.append(message["code"])

    def _needs_slots(self) -> bool:
        assert self.peer is not None
        audio = sum(1 for t in self.peer.receptions if t.kind == "audio")
        video = sum(1 for t in self.peer.receptions if t.kind == "video")
        return self.wanted[0] > audio or self.wanted[1] > video

    def mid_of(self, publisher: Client, source: str) -> str | None:
        return next(
            (
                mid
                for mid, slot in self.tracks.items()
                if slot == {"participant": publisher.id, "source": source}
            ),
            None,
        )

    def decodes(self, publisher: Client, source: str) -> bool:
        """This client decoded frames of the publisher's source: the VP8 or Opus is valid."""
        mid = self.mid_of(publisher, source)
        if mid is None or self.peer is None:
            return False
        return self.peer.reception(mid).decoded_frames > 0

    def frames_from(self, publisher: Client, source: str) -> int:
        mid = self.mid_of(publisher, source)
        if mid is None or self.peer is None:
            return 0
        return self.peer.reception(mid).encoded_frames


@pytest_asyncio.fixture
async def clients() -> AsyncIterator[list[Client]]:
    opened: list[Client] = []
    yield opened
    for client in opened:
        if client.reader is not None:
            client.reader.cancel()
        with contextlib.suppress(BaseException):
            await client.socket.disconnect(timeout=TIMEOUT)
        if client.peer is not None:
            await client.peer.close()
    await close_database_thread()


async def enter(clients: list[Client], lesson: Lesson, user: User) -> Client:
    cookie = await database_sync_to_async(session_cookie)(user)
    socket = communicator_for(lesson.key, cookie)
    accepted, _ = await socket.connect(timeout=TIMEOUT)
    assert accepted
    hello = await socket.receive_json_from(timeout=TIMEOUT)
    assert hello["type"] == "hello"
    client = Client(user=user, socket=socket, hello=hello)
    opened_reader = asyncio.create_task(client.read())
    client.reader = opened_reader
    clients.append(client)
    return client


async def lesson_with_media(clients: list[Client], classroom: Classroom) -> list[Client]:
    """The teacher and both pupils in, pupils granted microphone and camera, media flowing."""
    teacher = await enter(clients, classroom.lesson, classroom.teacher)
    ada = await enter(clients, classroom.lesson, classroom.ada)
    bob = await enter(clients, classroom.lesson, classroom.bob)
    for source in ("mic", "camera"):
        for pupil in (ada, bob):
            await teacher.say("grant", participant=pupil.id, source=source, on=True)
    await wait_for(lambda: len(ada.notices) == len(bob.notices) == 2, within=TIMEOUT)
    everyone = [teacher, ada, bob]
    for client in everyone:
        await client.go_live()
    await wait_for(
        lambda: all(
            client.frames_from(other, source) > 0
            for client in everyone
            for other in everyone
            if other is not client
            for source in ("mic", "camera")
        ),
        within=MEDIA_WITHIN,
    )
    return everyone


async def test_media_flows_between_three_participants(classroom, clients):
    everyone = await lesson_with_media(clients, classroom)
    for client in everyone:
        assert client.errors == []
        for other in everyone:
            if other is not client:
                await wait_for(partial(client.decodes, other, "camera"))


async def test_a_muted_pupil_who_keeps_sending_reaches_nobody_within_500_ms(classroom, clients):
    teacher, ada, bob = await lesson_with_media(clients, classroom)
    await teacher.say("mute", participant=ada.id)
    await asyncio.sleep(0.5)
    heard = (teacher.frames_from(ada, "mic"), bob.frames_from(ada, "mic"))
    seen = bob.frames_from(ada, "camera")
    await asyncio.sleep(1.0)
    assert (teacher.frames_from(ada, "mic"), bob.frames_from(ada, "mic")) == heard
    assert "muted" in ada.notices
    assert bob.frames_from(ada, "camera") > seen, "her camera still reaches the class"


async def test_malformed_offers_during_a_lesson_refuse_only_the_sender(classroom, clients):
    teacher, ada, bob = await lesson_with_media(clients, classroom)
    assert bob.peer is not None
    real_offer = bob.peer.pc.localDescription.sdp
    for sdp in [
        "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
        real_offer.replace("opus", "speex").replace("VP8", "H263"),
        real_offer[: len(real_offer) // 2],
        "garbage",
    ]:
        await bob.say("offer", sdp=sdp, sources={})
    await wait_for(lambda: bob.errors.count("bad-sdp") == 4, within=TIMEOUT)
    before = (teacher.frames_from(ada, "camera"), ada.frames_from(teacher, "camera"))
    await wait_for(
        lambda: (
            teacher.frames_from(ada, "camera") > before[0]
            and ada.frames_from(teacher, "camera") > before[1]
        )
    )
    assert teacher.errors == ada.errors == []
    assert bob.closed_with is None


async def test_attendance_opens_with_the_peer_connection_and_closes_when_it_ends(
    classroom, clients
):
    teacher = await enter(clients, classroom.lesson, classroom.teacher)
    ada = await enter(clients, classroom.lesson, classroom.ada)
    await asyncio.sleep(0.3)
    open_rows = database_sync_to_async(
        lambda: sorted(
            PresenceInterval.objects.filter(
                lesson=classroom.lesson, left_at__isnull=True
            ).values_list("user_id", flat=True)
        )
    )
    assert await open_rows() == [], "a socket alone is not presence"
    await teacher.go_live()
    await ada.go_live()
    await wait_for(lambda: ada.frames_from(teacher, "camera") > 0, within=MEDIA_WITHIN)
    await wait_for_rows(open_rows, [classroom.teacher.pk, classroom.ada.pk])
    assert ada.peer is not None
    # Her page loses its peer connection but keeps the socket: she is not there any more.
    await ada.peer.pc.close()
    await wait_for_rows(open_rows, [classroom.teacher.pk])
    assert ada.closed_with is None
    await teacher.socket.disconnect(timeout=TIMEOUT)
    await wait_for_rows(open_rows, [])


async def wait_for_rows(query: Any, expected: list[int]) -> None:
    for _ in range(100):
        if await query() == sorted(expected):
            return
        await asyncio.sleep(0.05)
    assert await query() == sorted(expected)
