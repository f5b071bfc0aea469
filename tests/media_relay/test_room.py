"""The lesson room's rules (docs/signalling.md), without a database, aiortc or a network.

Messages go through `signalling.parse`, as the consumer sends them, into a `Room` whose recorder
keeps everything in memory and whose forwarder only remembers what it was told to forward: that
memory is what the relay would send, so "not forwarded" here is "not one packet leaves".
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from aiortc import RTCIceServer, RTCPeerConnection

from media_relay import signalling
from media_relay.forwarding import NegotiationError, PeerState, SlotTrack
from media_relay.ports import Admission, Grants, ParticipantRole, RemovedPupil, RoomPolicy
from media_relay.rooms import SECTION_HEADROOM, Room, RoomRegistry, RoomSettings
from tests.media_relay.room_fakes import MemoryRecorder, RecordingSocket, SpyForwarder

pytestmark = pytest.mark.asyncio

T = TypeVar("T")

TEACHER, ADA, BOB = "1", "2", "3"
NAMES = {TEACHER: "Paul Lefèvre", ADA: "Ada Lovelace", BOB: "Bob Marley"}
NOTHING = Grants(mic=False, camera=False, screen=False)
EVERYTHING = Grants(mic=True, camera=True, screen=True)


async def inline(call: Callable[[], T]) -> T:
    return call()


_offer_sdp: list[str] = []


async def browser_offer() -> str:
    """A real offer with three sending sections, as a browser's first offer has."""
    if not _offer_sdp:
        pc = RTCPeerConnection()
        for kind in ("audio", "video", "video"):
            pc.addTransceiver(kind, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        _offer_sdp.append(pc.localDescription.sdp)
        await pc.close()
    return _offer_sdp[0]


@dataclass
class Lesson:
    """A room with helpers to join, speak and play the peer connections."""

    policy: RoomPolicy = field(default_factory=RoomPolicy)
    recorder: MemoryRecorder = field(default_factory=MemoryRecorder)
    registry: RoomRegistry = field(default_factory=RoomRegistry)
    sockets: dict[str, RecordingSocket] = field(default_factory=dict)
    forwarders: list[SpyForwarder] = field(default_factory=list)
    grants: dict[str, Grants] = field(default_factory=dict)
    roster_size: int = 0
    # What the school's records say was removed (a teacher's admission carries it).
    removed: tuple[RemovedPupil, ...] = ()
    snapshot_seconds: float = 0.0

    def admission(self, user_id: str) -> Admission:
        teacher = user_id == TEACHER
        return Admission(
            lesson_key="FractionsLessonKey01",
            lesson_id=7,
            school_id=1,
            user_id=int(user_id),
            role=ParticipantRole.TEACHER if teacher else ParticipantRole.PUPIL,
            display_name=NAMES[user_id],
            lesson_title="Fractions",
            ends_at=datetime(2025, 3, 12, 10, 30, tzinfo=UTC),
            grants=EVERYTHING if teacher else self.grants.get(user_id, NOTHING),
            policy=self.policy,
            roster_size=self.roster_size,
            removed=self.removed if teacher else (),
        )

    def _forwarder(
        self,
        *,
        ice_servers: Sequence[RTCIceServer],
        on_peer_state: Callable[[str, PeerState], None],
        on_tracks: Callable[[str, Mapping[str, SlotTrack | None]], None],
        on_slots_wanted: Callable[[str, int, int], None],
        on_speakers: Callable[[Sequence[str]], None],
    ) -> SpyForwarder:
        forwarder = SpyForwarder(
            on_peer_state=on_peer_state,
            on_tracks=on_tracks,
            on_slots_wanted=on_slots_wanted,
            on_speakers=on_speakers,
            ice_servers=ice_servers,
        )
        self.forwarders.append(forwarder)
        return forwarder

    def _build(self, admission: Admission) -> Room:
        return Room(
            lesson_key=admission.lesson_key,
            lesson_id=admission.lesson_id,
            admission=admission,
            recorder=self.recorder,
            offload=inline,
            make_forwarder=self._forwarder,
            # Snapshots go out at the next turn of the loop: `settle` sees them.
            settings=RoomSettings(heartbeat_seconds=0.05, snapshot_seconds=self.snapshot_seconds),
        )

    @property
    def room(self) -> Room:
        room = self.registry.get("FractionsLessonKey01")
        assert room is not None
        return room

    @property
    def forwarder(self) -> SpyForwarder:
        return self.forwarders[-1]

    async def join(self, user_id: str) -> RecordingSocket:
        admission = self.admission(user_id)
        socket = RecordingSocket()
        self.sockets[user_id] = socket
        room = self.registry.room_for(admission, lambda: self._build(admission))
        await room.join(admission, socket)
        await settle()
        return socket

    async def say(self, user_id: str, kind: str, **body: Any) -> None:
        message = signalling.parse(json.dumps({"v": 1, "type": kind, **body}))
        await self.room.receive(user_id, message)
        await settle()

    async def leave(self, user_id: str) -> None:
        await self.room.leave(user_id, self.sockets[user_id])
        await settle()

    async def connect_peer(self, user_id: str) -> None:
        self.forwarder.on_peer_state(user_id, "connected")
        await settle()

    async def live(self, user_id: str, *, mic: bool = True, camera: bool = True) -> None:
        """Join, switch on, and have the peer connection up."""
        await self.join(user_id)
        await self.say(user_id, "media", mic=mic, camera=camera)
        await self.connect_peer(user_id)

    def snapshot(self, user_id: str) -> dict[str, Any]:
        return self.sockets[user_id].last("room")

    def errors(self, user_id: str) -> list[str]:
        return [message["code"] for message in self.sockets[user_id].of_type("error")]

    def notices(self, user_id: str) -> list[str]:
        return [message["code"] for message in self.sockets[user_id].of_type("notice")]


async def settle() -> None:
    """Let the tasks the room spawned run to their end."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
def lesson() -> Lesson:
    return Lesson()


def participant(snapshot: dict[str, Any], user_id: str) -> dict[str, Any]:
    return next(p for p in snapshot["participants"] if p["id"] == user_id)


# --- Hello and the lobby -------------------------------------------------------------------------


async def test_the_teacher_is_welcomed_in_with_slots_and_ice_servers(lesson):
    socket = await lesson.join(TEACHER)
    hello = socket.messages[0]
    assert hello == {
        "v": 1,
        "type": "hello",
        "you": {"id": TEACHER, "name": "Paul Lefèvre", "role": "teacher"},
        "lesson": {"key": "FractionsLessonKey01", "title": "Fractions"},
        "endsAt": "2025-03-12T10:30:00+00:00",
        "state": "in",
        "slots": {"audio": 2, "video": 3},
        "iceServers": [],
    }
    assert socket.of_type("chat-history") == [{"v": 1, "type": "chat-history", "messages": []}]


async def test_a_pupil_before_any_teacher_waits_in_the_lobby_then_is_let_in(lesson):
    ada = await lesson.join(ADA)
    assert ada.messages[0]["state"] == "lobby"
    assert ada.last("lobby")["reason"] == "waiting-for-teacher"
    assert not ada.of_type("chat-history")
    await lesson.join(TEACHER)
    assert ada.last("admitted") == {"v": 1, "type": "admitted", "slots": {"audio": 2, "video": 3}}
    assert ada.of_type("chat-history")
    assert participant(lesson.snapshot(ADA), ADA)["state"] == "in"


async def test_without_the_lobby_policy_a_pupil_goes_straight_in(lesson):
    lesson.policy = RoomPolicy(lobby_until_teacher=False)
    ada = await lesson.join(ADA)
    assert ada.messages[0]["state"] == "in"
    assert not ada.of_type("lobby")


async def test_in_a_locked_lesson_a_pupil_waits_until_a_teacher_admits_them(lesson):
    await lesson.join(TEACHER)
    await lesson.say(TEACHER, "lock", on=True)
    ada = await lesson.join(ADA)
    assert ada.messages[0]["state"] == "lobby"
    assert ada.last("lobby")["reason"] == "locked"
    assert participant(lesson.snapshot(TEACHER), ADA)["state"] == "lobby"
    await lesson.say(TEACHER, "admit", participant=ADA)
    assert ada.of_type("admitted")
    assert participant(lesson.snapshot(ADA), ADA)["state"] == "in"


async def test_a_denied_pupil_is_closed_with_4411(lesson):
    await lesson.join(TEACHER)
    await lesson.say(TEACHER, "lock", on=True)
    ada = await lesson.join(ADA)
    await lesson.say(TEACHER, "deny", participant=ADA)
    assert ada.closed_with == 4411
    assert ADA not in [p["id"] for p in lesson.snapshot(TEACHER)["participants"]]


async def test_a_locked_lobby_is_not_let_in_when_the_first_teacher_arrives(lesson):
    lesson.policy = RoomPolicy(lobby_until_teacher=False)
    await lesson.join(TEACHER)
    await lesson.say(TEACHER, "lock", on=True)
    await lesson.leave(TEACHER)
    ada = await lesson.join(BOB)
    await lesson.join(TEACHER)
    assert not ada.of_type("admitted")


async def test_pupils_see_only_who_is_in_and_teachers_also_the_lobby(lesson):
    await lesson.join(TEACHER)
    await lesson.join(ADA)
    await lesson.say(TEACHER, "lock", on=True)
    await lesson.join(BOB)
    assert [p["id"] for p in lesson.snapshot(ADA)["participants"]] == [TEACHER, ADA]
    assert [p["id"] for p in lesson.snapshot(TEACHER)["participants"]] == [TEACHER, ADA, BOB]


async def test_a_lobby_pupil_may_set_switches_but_not_chat_or_offer(lesson):
    await lesson.join(ADA)
    await lesson.say(ADA, "chat", body="hello?")
    await lesson.say(ADA, "hand", up=True)
    await lesson.say(ADA, "ping")
    assert lesson.errors(ADA) == ["not-in-lesson", "not-in-lesson"]
    assert lesson.recorder.chat == []
    assert lesson.room.hands == []


# --- What is forwarded ---------------------------------------------------------------------------


async def test_a_source_is_forwarded_only_when_granted_on_in_and_connected(lesson):
    lesson.grants[ADA] = Grants(mic=True, camera=False, screen=False)
    await lesson.live(TEACHER)
    await lesson.join(ADA)
    await lesson.say(ADA, "media", mic=True, camera=True)
    assert lesson.errors(ADA) == ["not-granted"]
    assert (ADA, "mic") not in lesson.forwarder.forwarded(), "not connected yet"
    await lesson.connect_peer(ADA)
    assert lesson.forwarder.forwarded() == {
        (TEACHER, "mic"),
        (TEACHER, "camera"),
        (ADA, "mic"),
    }
    assert participant(lesson.snapshot(ADA), ADA)["camera"] == {"granted": False, "on": False}


async def test_pupils_are_paused_while_no_teacher_is_connected(lesson):
    lesson.policy = RoomPolicy(lobby_until_teacher=False)
    lesson.grants[ADA] = EVERYTHING
    await lesson.live(TEACHER)
    await lesson.live(ADA)
    assert (ADA, "mic") in lesson.forwarder.forwarded()
    await lesson.leave(TEACHER)
    assert lesson.forwarder.forwarded() == set()
    assert lesson.snapshot(ADA)["paused"] is True
    assert lesson.snapshot(ADA)["teacherPresent"] is False
    await lesson.live(TEACHER)
    assert (ADA, "mic") in lesson.forwarder.forwarded()
    assert lesson.snapshot(ADA)["paused"] is False


async def test_without_the_pause_policy_pupils_go_on_without_a_teacher(lesson):
    lesson.policy = RoomPolicy(lobby_until_teacher=False, pause_pupils_without_teacher=False)
    lesson.grants[ADA] = EVERYTHING
    await lesson.live(ADA)
    assert (ADA, "mic") in lesson.forwarder.forwarded()


async def test_a_peer_connection_that_ends_stops_its_forwarding_and_its_presence(lesson):
    await lesson.live(TEACHER)
    lesson.forwarder.on_peer_state(TEACHER, "failed")
    await settle()
    assert participant(lesson.snapshot(TEACHER), TEACHER)["connected"] is False
    assert [c["user_id"] for c in lesson.recorder.named("presence_closed")] == [1]
    await lesson.connect_peer(TEACHER)
    assert (TEACHER, "mic") in lesson.forwarder.forwarded()
    assert [c["user_id"] for c in lesson.recorder.named("presence_opened")] == [1, 1]


# --- Moderation ----------------------------------------------------------------------------------


async def test_a_muted_pupil_stops_being_forwarded_as_the_mute_is_handled(lesson):
    lesson.grants[ADA] = EVERYTHING
    await lesson.live(TEACHER)
    await lesson.live(ADA)
    message = signalling.parse('{"v": 1, "type": "mute", "participant": "2"}')
    # No settling: forwarding stops within the handling of the message itself.
    await lesson.room.receive(TEACHER, message)
    assert (ADA, "mic") not in lesson.forwarder.forwarded()
    assert (ADA, "camera") in lesson.forwarder.forwarded()
    assert lesson.notices(ADA) == ["muted"]
    # The snapshot may wait for the next round; it then shows the mute.
    await settle()
    assert participant(lesson.snapshot(TEACHER), ADA)["mic"] == {"granted": True, "on": False}


async def test_mute_all_switches_off_every_pupil_s_microphone_but_not_the_teacher_s(lesson):
    lesson.grants[ADA] = lesson.grants[BOB] = EVERYTHING
    await lesson.live(TEACHER)
    await lesson.live(ADA)
    await lesson.live(BOB)
    await lesson.say(TEACHER, "mute", all=True)
    assert lesson.forwarder.forwarded() == {
        (TEACHER, "mic"),
        (TEACHER, "camera"),
        (ADA, "camera"),
        (BOB, "camera"),
    }
    assert lesson.notices(ADA) == lesson.notices(BOB) == ["muted"]


async def test_revoking_a_grant_switches_the_source_off_and_is_recorded(lesson):
    await lesson.live(TEACHER)
    await lesson.live(ADA)
    assert lesson.errors(ADA) == ["not-granted"]
    await lesson.say(TEACHER, "grant", participant=ADA, source="mic", on=True)
    assert lesson.notices(ADA) == ["granted-mic"]
    await lesson.say(ADA, "media", mic=True, camera=False)
    assert (ADA, "mic") in lesson.forwarder.forwarded()
    await lesson.say(TEACHER, "grant", participant=ADA, source="mic", on=False)
    assert (ADA, "mic") not in lesson.forwarder.forwarded()
    assert lesson.notices(ADA) == ["granted-mic", "revoked-mic"]
    assert participant(lesson.snapshot(ADA), ADA)["mic"] == {"granted": False, "on": False}
    saved = lesson.recorder.named("grants_saved")
    assert [(c["user_id"], c["grants"], c["by_user_id"]) for c in saved] == [
        (2, Grants(mic=True, camera=False, screen=False), 1),
        (2, NOTHING, 1),
    ]


async def test_a_removed_pupil_is_closed_forgotten_and_kept_out_until_readmitted(lesson):
    lesson.grants[ADA] = EVERYTHING
    await lesson.live(TEACHER)
    ada = await lesson.join(ADA)
    await lesson.say(ADA, "media", mic=True, camera=True)
    await lesson.say(ADA, "hand", up=True)
    await lesson.connect_peer(ADA)
    await lesson.say(TEACHER, "remove", participant=ADA)
    assert ada.closed_with == 4410
    assert lesson.forwarder.removed == [ADA]
    assert {key[0] for key in lesson.forwarder.forwarded()} == {TEACHER}
    assert lesson.recorder.named("participant_removed") == [{"user_id": 2, "by_user_id": 1}]
    assert [c["user_id"] for c in lesson.recorder.named("presence_closed")] == [2]
    teacher_view = lesson.snapshot(TEACHER)
    assert teacher_view["removed"] == [{"id": ADA, "name": "Ada Lovelace"}]
    assert teacher_view["hands"] == []
    again = await lesson.join(ADA)
    assert again.closed_with == 4410
    await lesson.say(TEACHER, "readmit", participant=ADA)
    assert lesson.recorder.named("participant_readmitted") == [{"user_id": 2, "by_user_id": 1}]
    assert lesson.snapshot(TEACHER)["removed"] == []
    back = await lesson.join(ADA)
    assert back.closed_with is None
    assert back.messages[0]["state"] == "in"


TEACHER_MESSAGES = [
    pytest.param("mute", {"participant": BOB}, id="mute"),
    pytest.param("mute", {"all": True}, id="mute all"),
    pytest.param("grant", {"participant": BOB, "source": "mic", "on": False}, id="grant"),
    pytest.param("admit", {"participant": BOB}, id="admit"),
    pytest.param("deny", {"participant": BOB}, id="deny"),
    pytest.param("remove", {"participant": BOB}, id="remove"),
    pytest.param("readmit", {"participant": BOB}, id="readmit"),
    pytest.param("lock", {"on": True}, id="lock"),
    pytest.param("lower-hand", {"all": True}, id="lower-hand"),
    pytest.param("chat-delete", {"id": 1}, id="chat-delete"),
    pytest.param("end", {}, id="end"),
]


@pytest.mark.parametrize(("kind", "body"), TEACHER_MESSAGES)
async def test_a_pupil_sending_a_teacher_message_is_forbidden_and_nothing_changes(
    lesson, kind, body
):
    lesson.grants[BOB] = EVERYTHING
    await lesson.live(TEACHER)
    await lesson.live(ADA, mic=False, camera=False)
    await lesson.live(BOB)
    await lesson.say(BOB, "hand", up=True)
    await lesson.say(BOB, "chat", body="first")
    before = (
        lesson.room.snapshot_for(lesson.room.participants[TEACHER]),
        lesson.forwarder.forwarded(),
        list(lesson.recorder.calls),
        list(lesson.recorder.chat),
    )
    await lesson.say(ADA, kind, **body)
    assert lesson.errors(ADA)[-1] == "forbidden"
    assert lesson.room.participants[BOB].connection.closed_with is None
    after = (
        lesson.room.snapshot_for(lesson.room.participants[TEACHER]),
        lesson.forwarder.forwarded(),
        list(lesson.recorder.calls),
        list(lesson.recorder.chat),
    )
    assert after == before


async def test_moderating_someone_who_is_not_a_pupil_here_is_refused(lesson):
    await lesson.live(TEACHER)
    await lesson.say(TEACHER, "mute", participant="99")
    await lesson.say(TEACHER, "remove", participant=TEACHER)
    await lesson.say(TEACHER, "readmit", participant="99")
    assert lesson.errors(TEACHER) == ["unknown-participant"] * 3
    assert lesson.recorder.named("participant_removed") == []


async def test_ending_the_lesson_closes_every_socket_with_4412(lesson):
    await lesson.live(TEACHER)
    ada = await lesson.join(ADA)
    await lesson.say(TEACHER, "end")
    assert lesson.sockets[TEACHER].closed_with == ada.closed_with == 4412
    assert lesson.recorder.named("lesson_ended") == [{"by_user_id": 1}]
    assert lesson.forwarder.closed
    assert lesson.registry.get("FractionsLessonKey01") is None


# --- Hands, screen, chat -------------------------------------------------------------------------


async def test_hands_queue_in_the_order_raised_and_the_teacher_lowers_them(lesson):
    await lesson.join(TEACHER)
    await lesson.join(ADA)
    await lesson.join(BOB)
    await lesson.say(BOB, "hand", up=True)
    await lesson.say(ADA, "hand", up=True)
    view = lesson.snapshot(TEACHER)
    assert view["hands"] == [BOB, ADA]
    assert (participant(view, BOB)["hand"], participant(view, ADA)["hand"]) == (1, 2)
    await lesson.say(TEACHER, "lower-hand", participant=BOB)
    assert lesson.snapshot(ADA)["hands"] == [ADA]
    assert participant(lesson.snapshot(ADA), ADA)["hand"] == 1
    assert lesson.notices(BOB) == ["hands-cleared"]
    await lesson.say(BOB, "hand", up=True)
    await lesson.say(TEACHER, "lower-hand", all=True)
    assert lesson.snapshot(TEACHER)["hands"] == []
    assert lesson.notices(ADA) == ["hands-cleared"]


async def test_one_screen_share_at_a_time_and_a_teacher_takes_over(lesson):
    lesson.grants[ADA] = lesson.grants[BOB] = Grants(mic=False, camera=False, screen=True)
    await lesson.live(TEACHER)
    await lesson.live(ADA, mic=False, camera=False)
    await lesson.live(BOB, mic=False, camera=False)
    await lesson.say(ADA, "share", on=True)
    assert lesson.snapshot(BOB)["screen"] == ADA
    assert (ADA, "screen") in lesson.forwarder.forwarded()
    await lesson.say(BOB, "share", on=True)
    assert lesson.errors(BOB) == ["forbidden"]
    await lesson.say(TEACHER, "share", on=True)
    assert lesson.snapshot(BOB)["screen"] == TEACHER
    assert lesson.notices(ADA) == ["screen-stopped"]
    assert (ADA, "screen") not in lesson.forwarder.forwarded()
    assert (TEACHER, "screen") in lesson.forwarder.forwarded()
    await lesson.say(TEACHER, "share", on=False)
    assert lesson.snapshot(BOB)["screen"] is None


async def test_sharing_the_screen_needs_the_grant(lesson):
    await lesson.live(TEACHER)
    await lesson.live(ADA)
    await lesson.say(ADA, "share", on=True)
    assert lesson.errors(ADA)[-1] == "not-granted"
    assert lesson.snapshot(ADA)["screen"] is None


async def test_chat_reaches_everyone_in_is_kept_and_a_teacher_deletes_it(lesson):
    await lesson.join(TEACHER)
    ada = await lesson.join(ADA)
    await lesson.say(TEACHER, "lock", on=True)
    bob = await lesson.join(BOB)
    await lesson.say(ADA, "chat", body="  Is it 3/4?  ")
    line = ada.last("chat")["message"]
    assert line["body"] == "Is it 3/4?"
    assert line["from"] == {"id": ADA, "name": "User 2"}
    assert lesson.sockets[TEACHER].last("chat") == ada.last("chat")
    assert not bob.of_type("chat"), "the lobby does not read the lesson's chat"
    await lesson.say(TEACHER, "admit", participant=BOB)
    assert [m["body"] for m in bob.last("chat-history")["messages"]] == ["Is it 3/4?"]
    await lesson.say(TEACHER, "chat-delete", id=line["id"])
    assert ada.last("chat-deleted")["id"] == line["id"]
    assert lesson.recorder.chat == []
    await lesson.say(TEACHER, "chat-delete", id=line["id"])
    assert lesson.errors(TEACHER) == ["bad-message"]


# --- Offers and candidates -----------------------------------------------------------------------


async def test_an_offer_is_answered_with_the_forwarder_s_answer(lesson):
    await lesson.join(TEACHER)
    await lesson.say(TEACHER, "offer", sdp=await browser_offer(), sources={"0": "mic"})
    assert lesson.sockets[TEACHER].last("answer")["sdp"] == f"answer for {TEACHER}"
    assert lesson.forwarder.offers == [(TEACHER, {"0": "mic"})]


async def test_a_second_offer_while_the_first_is_answered_is_busy(lesson):
    await lesson.join(TEACHER)
    sdp = await browser_offer()
    first = signalling.parse(json.dumps({"v": 1, "type": "offer", "sdp": sdp, "sources": {}}))
    await lesson.room.receive(TEACHER, first)
    await lesson.room.receive(TEACHER, first)
    await settle()
    assert lesson.errors(TEACHER) == ["busy"]
    assert len(lesson.sockets[TEACHER].of_type("answer")) == 1


async def test_an_offer_the_gate_refuses_is_bad_sdp_and_the_connection_goes_on(lesson):
    await lesson.live(TEACHER)
    await lesson.say(TEACHER, "offer", sdp="v=0\r\nm=application 9 DTLS/SCTP 5000\r\n", sources={})
    assert lesson.errors(TEACHER) == ["bad-sdp"]
    assert lesson.forwarder.offers == []
    assert lesson.forwarder.removed == []
    assert (TEACHER, "mic") in lesson.forwarder.forwarded()


async def test_an_offer_with_more_sections_than_the_lesson_needs_is_bad_sdp(lesson):
    await lesson.join(TEACHER)
    pc = RTCPeerConnection()
    for _ in range(lesson.room.max_media_sections + 1):
        pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    await pc.close()
    await lesson.say(TEACHER, "offer", sdp=pc.localDescription.sdp, sources={})
    assert lesson.errors(TEACHER) == ["bad-sdp"]
    assert lesson.forwarder.offers == []


async def test_an_exception_from_the_forwarder_ends_only_that_peer_connection(lesson):
    lesson.grants[ADA] = EVERYTHING
    await lesson.live(TEACHER)
    await lesson.live(ADA)
    lesson.forwarder.failure = RuntimeError("aiortc fell over")
    await lesson.say(ADA, "offer", sdp=await browser_offer(), sources={})
    assert lesson.errors(ADA)[-1] == "bad-sdp"
    assert lesson.forwarder.removed == [ADA]
    assert participant(lesson.snapshot(TEACHER), ADA)["connected"] is False
    assert lesson.forwarder.forwarded() == {(TEACHER, "mic"), (TEACHER, "camera")}
    assert lesson.sockets[ADA].closed_with is None
    assert lesson.sockets[TEACHER].closed_with is None


async def test_an_offer_the_forwarder_cannot_answer_is_bad_sdp_and_may_be_retried(lesson):
    await lesson.join(TEACHER)
    lesson.forwarder.failure = NegotiationError("no VP8")
    await lesson.say(TEACHER, "offer", sdp=await browser_offer(), sources={})
    assert lesson.sockets[TEACHER].last("error") == {
        "v": 1,
        "type": "error",
        "code": "bad-sdp",
        "detail": "no VP8",
    }
    lesson.forwarder.failure = None
    await lesson.say(TEACHER, "offer", sdp=await browser_offer(), sources={})
    assert lesson.sockets[TEACHER].last("answer")["sdp"] == f"answer for {TEACHER}"


async def test_a_candidate_is_gated_then_handed_to_the_forwarder(lesson):
    await lesson.join(TEACHER)
    good = "candidate:1 1 udp 2130706431 192.0.2.7 50000 typ host"
    await lesson.say(TEACHER, "candidate", candidate=good, sdpMid="0")
    await lesson.say(
        TEACHER, "candidate", candidate="candidate:1 1 udp 1 127.0.0.1 5 typ host", sdpMid="0"
    )
    assert lesson.forwarder.candidates == [(TEACHER, good, "0")]
    assert lesson.errors(TEACHER) == ["bad-sdp"]


async def test_tracks_and_slots_from_the_forwarder_reach_that_participant(lesson):
    await lesson.join(TEACHER)
    ada = await lesson.join(ADA)
    lesson.forwarder.on_tracks(ADA, {"3": SlotTrack(participant=TEACHER, source="mic"), "4": None})
    lesson.forwarder.on_slots_wanted(ADA, 2, 4)
    assert ada.last("tracks")["mids"] == {"3": {"participant": TEACHER, "source": "mic"}, "4": None}
    assert ada.last("slots") == {"v": 1, "type": "slots", "audio": 2, "video": 4}
    assert not lesson.sockets[TEACHER].of_type("tracks")


# --- Reconnects and attendance -------------------------------------------------------------------


async def test_a_second_tab_replaces_the_first_and_keeps_the_state(lesson):
    lesson.grants[ADA] = Grants(mic=True, camera=False, screen=False)
    await lesson.live(TEACHER)
    first = await lesson.join(ADA)
    await lesson.say(TEACHER, "grant", participant=ADA, source="camera", on=True)
    await lesson.say(ADA, "hand", up=True)
    await lesson.connect_peer(ADA)
    second = await lesson.join(ADA)
    assert first.closed_with == 4000
    assert lesson.forwarder.removed == [ADA], "the old tab's peer connection is closed"
    await lesson.room.leave(ADA, first)
    view = lesson.snapshot(TEACHER)
    assert participant(view, ADA)["camera"]["granted"] is True
    assert participant(view, ADA)["connected"] is False
    assert view["hands"] == [ADA]
    assert second.messages[0]["state"] == "in"


async def test_a_reconnecting_pupil_finds_their_grants_while_the_room_lives(lesson):
    await lesson.live(TEACHER)
    await lesson.join(ADA)
    await lesson.say(TEACHER, "grant", participant=ADA, source="screen", on=True)
    await lesson.leave(ADA)
    await lesson.join(ADA)
    assert participant(lesson.snapshot(TEACHER), ADA)["screen"]["granted"] is True


async def test_attendance_follows_the_peer_connection_and_the_socket(lesson):
    await lesson.live(TEACHER)
    await asyncio.sleep(0.12)
    seen = lesson.recorder.named("presence_seen")
    assert seen
    assert all(call["user_ids"] == [1] for call in seen)
    await lesson.join(ADA)
    await lesson.leave(TEACHER)
    assert [c["user_id"] for c in lesson.recorder.named("presence_opened")] == [1]
    assert [c["user_id"] for c in lesson.recorder.named("presence_closed")] == [1]
    await lesson.leave(ADA)
    assert lesson.registry.get("FractionsLessonKey01") is None
    assert lesson.forwarder.closed


async def test_closing_the_room_still_records_the_end_of_every_presence(lesson):
    await lesson.live(TEACHER)
    await lesson.live(ADA)
    await lesson.leave(ADA)
    await lesson.say(TEACHER, "end")
    closed = [c["user_id"] for c in lesson.recorder.named("presence_closed")]
    assert sorted(closed) == [1, 2]
    lesson.forwarder.on_peer_state(TEACHER, "closed")
    await settle()
    assert len(lesson.recorder.named("presence_closed")) == 2, "reported once"


async def test_an_answer_for_a_replaced_tab_is_not_sent_to_the_new_one(lesson):
    first = await lesson.join(TEACHER)
    lesson.forwarder.hold = asyncio.Event()
    await lesson.say(TEACHER, "offer", sdp=await browser_offer(), sources={})
    second = await lesson.join(TEACHER)
    lesson.forwarder.hold.set()
    await settle()
    assert first.closed_with == 4000
    assert second.of_type("answer") == []
    await lesson.say(TEACHER, "offer", sdp=await browser_offer(), sources={})
    assert [m["sdp"] for m in second.of_type("answer")] == [f"answer for {TEACHER}"]
    assert lesson.errors(TEACHER) == []


async def test_trickled_candidates_share_the_offer_s_cap_of_twenty(lesson):
    await lesson.join(TEACHER)
    sdp = await browser_offer()
    in_offer = sdp.count("a=candidate:")
    await lesson.say(TEACHER, "offer", sdp=sdp, sources={})
    for port in range(50000, 50000 + 21 - in_offer):
        candidate = f"candidate:1 1 udp 2130706431 192.0.2.7 {port} typ host"
        await lesson.say(TEACHER, "candidate", candidate=candidate, sdpMid="0")
    assert len(lesson.forwarder.candidates) == 20 - in_offer
    assert lesson.errors(TEACHER) == ["bad-sdp"]


# --- What the room costs -------------------------------------------------------------------------


async def test_a_burst_of_inputs_costs_each_participant_one_snapshot_per_round(lesson):
    """Snapshots are coalesced: 20 hands in a burst are not 20 snapshots to everyone."""
    lesson.snapshot_seconds = 0.1
    await lesson.join(TEACHER)
    await lesson.join(ADA)
    await lesson.join(BOB)
    await asyncio.sleep(0.15)
    before = {user_id: len(lesson.sockets[user_id].of_type("room")) for user_id in NAMES}
    for up in [True, False] * 10:
        await lesson.say(ADA, "hand", up=up)
    await lesson.say(BOB, "hand", up=True)
    await asyncio.sleep(0.15)
    for user_id, count in before.items():
        assert len(lesson.sockets[user_id].of_type("room")) - count <= 2
        assert lesson.snapshot(user_id)["hands"] == [BOB], "the last round shows the last state"


async def test_rounds_of_snapshots_are_at_least_the_interval_apart(lesson):
    lesson.snapshot_seconds = 0.1
    await lesson.join(TEACHER)
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []
    socket = lesson.sockets[TEACHER]
    original = socket.send

    def timed(text: str) -> None:
        if json.loads(text)["type"] == "room":
            arrivals.append(loop.time())
        original(text)

    socket.send = timed
    for _ in range(30):
        await lesson.say(TEACHER, "hand", up=True)
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.15)
    assert len(arrivals) >= 2
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.09


async def test_chat_past_a_burst_of_five_is_rate_limited_and_the_socket_stays_open(lesson):
    await lesson.join(TEACHER)
    ada = await lesson.join(ADA)
    for n in range(7):
        await lesson.say(ADA, "chat", body=f"message {n}")
    assert [line.body for line in lesson.recorder.chat] == [f"message {n}" for n in range(5)]
    assert lesson.errors(ADA) == ["rate-limited", "rate-limited"]
    assert ada.closed_with is None
    await lesson.say(TEACHER, "chat", body="the teacher has their own allowance")
    assert lesson.errors(TEACHER) == []


async def test_the_chat_allowance_refills_at_one_a_second_and_survives_a_reconnect(lesson):
    await lesson.join(TEACHER)
    await lesson.join(ADA)
    for n in range(5):
        await lesson.say(ADA, "chat", body=f"message {n}")
    await lesson.join(ADA)
    await lesson.say(ADA, "chat", body="after reconnecting")
    assert lesson.errors(ADA) == ["rate-limited"]
    await asyncio.sleep(1.05)
    await lesson.say(ADA, "chat", body="a second later")
    assert lesson.recorder.chat[-1].body == "a second later"


async def test_the_offer_size_bound_follows_the_roster_not_who_came(lesson):
    lesson.roster_size = 30
    await lesson.join(TEACHER)
    assert lesson.room.max_media_sections == 4 + 2 * 30 + SECTION_HEADROOM
    pc = RTCPeerConnection()
    for _ in range(4 + 2 * 10):
        pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    await pc.close()
    # Without its candidates (one pair per section here): only the section count is at stake.
    sdp = "".join(
        line
        for line in pc.localDescription.sdp.splitlines(keepends=True)
        if not line.startswith("a=candidate:")
    )
    await lesson.say(TEACHER, "offer", sdp=sdp, sources={})
    assert lesson.sockets[TEACHER].of_type("error") == [], "a class of 30 needs more slots"


async def test_without_a_roster_size_the_bound_falls_back_to_who_came(lesson):
    await lesson.join(TEACHER)
    await lesson.join(ADA)
    assert lesson.room.max_media_sections == 4 + 2 * 2 + SECTION_HEADROOM


async def test_unlocking_lets_the_whole_lobby_in(lesson):
    await lesson.join(TEACHER)
    await lesson.say(TEACHER, "lock", on=True)
    ada = await lesson.join(ADA)
    bob = await lesson.join(BOB)
    await lesson.say(TEACHER, "lock", on=False)
    assert ada.of_type("admitted")
    assert bob.of_type("admitted")
    assert {p["state"] for p in lesson.snapshot(TEACHER)["participants"]} == {"in"}


async def test_an_admission_cannot_have_a_negative_roster():
    with pytest.raises(ValueError, match="roster_size"):
        replace(Lesson().admission(ADA), roster_size=-1)


# --- Layout, last-N and speakers -----------------------------------------------------------------


async def test_the_lesson_starts_in_teacher_layout_with_last_six(lesson):
    await lesson.join(TEACHER)
    snapshot = lesson.snapshot(TEACHER)
    assert (snapshot["layout"], snapshot["lastN"], snapshot["speakers"]) == ("teacher", 6, [])
    assert lesson.forwarder.selection == (6, frozenset({TEACHER}))


async def test_a_teacher_switches_everyone_to_speaker_layout_and_sets_last_n(lesson):
    await lesson.join(TEACHER)
    await lesson.join(ADA)
    await lesson.say(TEACHER, "layout", layout="speaker", lastN=9)
    for user_id in (TEACHER, ADA):
        assert lesson.snapshot(user_id)["layout"] == "speaker"
        assert lesson.snapshot(user_id)["lastN"] == 9
    assert lesson.forwarder.selection == (9, frozenset({TEACHER}))
    await lesson.say(TEACHER, "layout", layout="teacher")
    assert (lesson.snapshot(ADA)["layout"], lesson.snapshot(ADA)["lastN"]) == ("teacher", 9)


async def test_a_pupil_cannot_choose_the_layout(lesson):
    await lesson.join(TEACHER)
    await lesson.join(ADA)
    await lesson.say(ADA, "layout", layout="speaker", lastN=2)
    assert lesson.errors(ADA) == ["forbidden"]
    assert (lesson.snapshot(ADA)["layout"], lesson.snapshot(ADA)["lastN"]) == ("teacher", 6)
    assert lesson.forwarder.selection == (6, frozenset({TEACHER}))


async def test_every_teacher_present_is_pinned_for_last_n(lesson):
    lesson.policy = RoomPolicy(lobby_until_teacher=False)
    await lesson.join(ADA)
    assert lesson.forwarder.selection == (6, frozenset())
    await lesson.join(TEACHER)
    assert lesson.forwarder.selection == (6, frozenset({TEACHER}))
    await lesson.leave(TEACHER)
    assert lesson.forwarder.selection == (6, frozenset())


async def test_the_speakers_the_relay_hears_are_in_everyones_snapshot(lesson):
    await lesson.live(TEACHER)
    lesson.grants[ADA] = EVERYTHING
    await lesson.live(ADA)
    lesson.forwarder.on_speakers([ADA, TEACHER])
    await settle()
    assert lesson.snapshot(TEACHER)["speakers"] == [ADA, TEACHER]
    assert lesson.snapshot(ADA)["speakers"] == [ADA, TEACHER]
    lesson.forwarder.on_speakers([])
    await settle()
    assert lesson.snapshot(ADA)["speakers"] == []


async def test_pupils_are_not_told_that_someone_in_the_lobby_speaks(lesson):
    await lesson.join(TEACHER)
    await lesson.join(ADA)
    await lesson.say(TEACHER, "lock", on=True)
    await lesson.join(BOB)
    lesson.forwarder.on_speakers([BOB, ADA])
    await settle()
    assert lesson.snapshot(ADA)["speakers"] == [ADA]
    assert lesson.snapshot(TEACHER)["speakers"] == [BOB, ADA]


async def test_a_room_rebuilt_after_a_restart_still_lets_removed_pupils_back(lesson):
    """The removal outlived the old room in the records: the teacher's admission lists it, so the
    new room keeps the pupil out and still offers to let them back in."""
    lesson.removed = (RemovedPupil(user_id=int(ADA), display_name="Ada Lovelace"),)
    await lesson.live(TEACHER)
    assert lesson.snapshot(TEACHER)["removed"] == [{"id": ADA, "name": "Ada Lovelace"}]
    assert (await lesson.join(ADA)).closed_with == 4410
    await lesson.say(TEACHER, "readmit", participant=ADA)
    assert lesson.recorder.named("participant_readmitted") == [{"user_id": 2, "by_user_id": 1}]
    assert (await lesson.join(ADA)).closed_with is None


async def test_a_page_says_whose_camera_it_shows_large_even_from_the_lobby(lesson):
    ada = await lesson.join(ADA)
    assert ada.messages[0]["state"] == "lobby"
    await lesson.say(ADA, "stage", participant=TEACHER)
    assert lesson.errors(ADA) == []
    assert lesson.forwarder.stages[ADA] == frozenset({TEACHER})
    await lesson.join(TEACHER)
    await lesson.say(ADA, "stage", participant=None)
    assert lesson.forwarder.stages[ADA] == frozenset()
