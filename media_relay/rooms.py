"""A live lesson's room: who is in it, what they may send, and the rules of docs/signalling.md.

One `Room` per lesson runs in the process that holds its websockets; `RoomRegistry` creates it on
the first join and drops it when the last participant leaves. The room is pure asyncio and holds no
ORM objects: it reaches the school's records through the `LessonRecorder` port, whose synchronous
methods it runs through the `offload` function the consumer gives it (a database thread), and it
talks to each participant through a `Connection` whose `send` and `close` only queue, so that the
room's rules run to completion without awaiting a socket. The room alone decides what the forwarder
forwards: after every change it recomputes, per source, granted AND switched on AND in the lesson
AND peer connected AND not a paused pupil, and tells the forwarder what changed. Teachers' messages
are handled in media_relay.moderation, chat in media_relay.chat, and attendance is recorded by
media_relay.attendance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from aiortc import RTCIceServer

from media_relay import chat, moderation, sdp_gate, signalling
from media_relay.attendance import Attendance, Offload
from media_relay.chat import ChatAllowance
from media_relay.forwarding import NegotiationError, OfferSource, PeerState, SlotTrack, Source
from media_relay.participants import (
    CloseCode,
    Connection,
    MessageRefusedError,
    Participant,
    describe,
)
from media_relay.ports import Admission, Grants, LessonRecorder
from media_relay.selection import DEFAULT_LAST_N

logger = logging.getLogger(__name__)

SOURCES: tuple[Source, ...] = ("mic", "camera", "screen")
# A crash or restart cannot write the leave of whoever was connected: their presence then ends
# at the last heartbeat, so this is the most attendance a restart may lose (one small UPDATE per
# room each time).
HEARTBEAT_SECONDS = 10.0
# The least time between two rounds of `room` snapshots of one room.
SNAPSHOT_SECONDS = 0.1
# Media sections an offer may need beyond four to send and two to receive per participant: a
# screen share, the forwarder's spare receive slots of each kind, and a few more a client keeps
# while people come and go.
SECTION_HEADROOM = 8


class Forwarder(Protocol):
    """What the room uses of `LessonForwarder` (see media_relay.forwarding for the contract)."""

    async def negotiate(
        self, participant: str, offer_sdp: str, sources: Mapping[str, OfferSource]
    ) -> str: ...

    async def add_candidate(self, participant: str, candidate: str, sdp_mid: str) -> None: ...

    def slots_wanted(self, participant: str) -> tuple[int, int]: ...

    def set_forwarding(self, participant: str, source: Source, on: bool) -> None: ...

    def set_selection(self, *, last_n: int, pinned: Collection[str]) -> None: ...

    def set_stage(self, participant: str, staged: Collection[str] | None) -> None: ...

    async def remove(self, participant: str) -> None: ...

    async def close(self) -> None: ...


class ForwarderFactory(Protocol):
    def __call__(
        self,
        *,
        ice_servers: Sequence[RTCIceServer],
        on_peer_state: Callable[[str, PeerState], None],
        on_tracks: Callable[[str, Mapping[str, SlotTrack | None]], None],
        on_slots_wanted: Callable[[str, int, int], None],
        on_speakers: Callable[[Sequence[str]], None],
    ) -> Forwarder: ...


@dataclass(frozen=True)
class RoomSettings:
    """What a room needs from the process's configuration."""

    ice_servers: Sequence[Mapping[str, Any]] = ()
    allow_loopback: bool = False
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    snapshot_seconds: float = SNAPSHOT_SECONDS


Layout = Literal["teacher", "speaker"]

# What a participant waiting in the lobby may do; anything else answers `not-in-lesson`.
LOBBY_ALLOWED = frozenset({"ping", "media", "stage"})


@dataclass
class Room:
    """One lesson's participants, lobby, moderation and media forwarding decisions."""

    lesson_key: str
    lesson_id: int
    admission: Admission
    recorder: LessonRecorder
    offload: Offload
    make_forwarder: ForwarderFactory
    settings: RoomSettings = field(default_factory=RoomSettings)
    on_empty: Callable[[Room], None] = lambda room: None

    participants: dict[str, Participant] = field(default_factory=dict)
    locked: bool = False
    hands: list[str] = field(default_factory=list)
    # Pupils removed while this room lived (id -> name), whom a teacher may let back in.
    removed: dict[str, str] = field(default_factory=dict)
    screen: str | None = None
    # What the teacher chose: the page's large tile shows the teacher or the current speaker, and
    # each participant receives last-N cameras (media_relay.selection).
    layout: Layout = "teacher"
    last_n: int = DEFAULT_LAST_N
    # The active speakers, as the forwarder hears them.
    speakers: tuple[str, ...] = ()
    closed: bool = False
    _forwarder: Forwarder | None = None
    _forwarding: dict[tuple[str, Source], bool] = field(default_factory=dict)
    # Grants of participants who left while the room lived: a reconnect finds them again.
    _left_grants: dict[str, Grants] = field(default_factory=dict)
    _peak: int = 0
    # The largest class roster an admission to this room reported (rosters may grow mid-lesson).
    _roster_size: int = 0
    chat_allowance: ChatAllowance = field(default_factory=ChatAllowance)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _attendance: Attendance = field(init=False)
    _heartbeat: asyncio.Task[None] | None = None
    _snapshots: asyncio.Task[None] | None = None
    _last_snapshots: float = float("-inf")

    def __post_init__(self) -> None:
        self._attendance = Attendance(
            lesson_key=self.lesson_key,
            lesson_id=self.lesson_id,
            recorder=self.recorder,
            offload=self.offload,
        )

    @property
    def forwarder(self) -> Forwarder:
        if self._forwarder is None:
            self._forwarder = self.make_forwarder(
                ice_servers=self._rtc_ice_servers(),
                on_peer_state=self._on_peer_state,
                on_tracks=self._on_tracks,
                on_slots_wanted=self._on_slots_wanted,
                on_speakers=self._on_speakers,
            )
        return self._forwarder

    # --- Joining and leaving ---------------------------------------------------------------------

    async def join(self, admission: Admission, connection: Connection) -> None:
        """Welcome a participant (or replace their older socket): in the lesson or in the lobby."""
        user_id = str(admission.user_id)
        self._roster_size = max(self._roster_size, admission.roster_size)
        # A teacher's admission lists who was removed, so a room rebuilt after a restart can
        # still let them back in.
        for removed in admission.removed:
            self.removed.setdefault(str(removed.user_id), removed.display_name)
        if user_id in self.removed:
            connection.close(CloseCode.REMOVED)
            return
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(
                self._attendance.beat(self._connected_ids, every=self.settings.heartbeat_seconds)
            )
        previous = self.participants.get(user_id)
        if previous is not None:
            await self._replace(previous, connection)
            participant = previous
        else:
            participant = Participant(
                id=user_id,
                role=admission.role,
                name=admission.display_name,
                connection=connection,
                grants=self._left_grants.pop(user_id, admission.grants),
            )
            if participant.is_teacher:
                participant.state = "in"
            else:
                participant.lobby_reason = self._lobby_reason()
                participant.state = "lobby" if participant.lobby_reason else "in"
            self.participants[user_id] = participant
            self._peak = max(self._peak, len(self.participants))
        self.send(
            participant,
            "hello",
            you={"id": user_id, "name": participant.name, "role": participant.role.value},
            lesson={"key": admission.lesson_key, "title": admission.lesson_title},
            endsAt=admission.ends_at.astimezone(UTC).isoformat(),
            state=participant.state,
            slots=self._slots(participant),
            iceServers=list(self.settings.ice_servers),
        )
        if participant.state == "lobby":
            self.send(participant, "lobby", reason=participant.lobby_reason)
        else:
            await chat.send_history(self, participant)
        self._settle_lobby_soon()
        self.changed()

    async def _replace(self, participant: Participant, connection: Connection) -> None:
        """The same user joined again (another tab, or a reconnect the old socket missed)."""
        participant.connection.close(CloseCode.REPLACED)
        participant.connection = connection
        participant.negotiating = False
        # The new page builds a new peer connection; the old one must not answer for it.
        await self.end_peer(participant)

    async def leave(
        self, user_id: str, connection: Connection, *, left_at: datetime | None = None
    ) -> None:
        """A socket closed (its client last heard at `left_at`, if known). Ignored when it is one
        the room already replaced or closed."""
        participant = self.participants.get(user_id)
        if participant is None or participant.connection is not connection:
            return
        del self.participants[user_id]
        self._left_grants[user_id] = participant.grants
        self.forget(participant)
        await self.end_peer(participant, left_at=left_at)
        if not self.participants:
            await self.close()
            return
        self.changed()

    async def close(self) -> None:
        """Stop the room: peer connections, heartbeat, pending work. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.on_empty(self)
        for task in (self._heartbeat, self._snapshots):
            if task is not None:
                task.cancel()
        for task in list(self._tasks):
            task.cancel()
        for participant in self.participants.values():
            if participant.connected:
                participant.connected = False
                self._attendance.record(participant.id, opened=False)
        self.participants.clear()
        if self._forwarder is not None:
            await self._forwarder.close()
        await self._attendance.flush()

    async def end(self, code: int = CloseCode.ENDED) -> None:
        """Close every socket with `code` and the room with them."""
        for participant in self.participants.values():
            participant.connection.close(code)
        await self.close()

    # --- Messages --------------------------------------------------------------------------------

    async def receive(self, user_id: str, message: signalling.Message) -> None:
        """Act on one parsed message from a participant; refusals answer `error`."""
        participant = self.participants.get(user_id)
        if participant is None or self.closed:
            return
        try:
            if message.type in signalling.TEACHER_TYPES and not participant.is_teacher:
                raise MessageRefusedError("forbidden", "Only a teacher may do that.")
            if participant.state == "lobby" and message.type not in LOBBY_ALLOWED:
                raise MessageRefusedError("not-in-lesson", "Wait to be let in.")
            if message.type in moderation.HANDLERS:
                await moderation.HANDLERS[message.type](self, participant, message.body)
            else:
                handler = getattr(self, "on_" + message.type)
                await handler(participant, message.body)
        except MessageRefusedError as refusal:
            self.send(participant, "error", code=refusal.code, detail=refusal.detail)

    async def on_ping(self, participant: Participant, body: dict[str, Any]) -> None:
        self.send(participant, "pong")

    async def on_media(self, participant: Participant, body: dict[str, Any]) -> None:
        refused = [
            source
            for source in ("mic", "camera")
            if body.get(source) and not getattr(participant.grants, source)
        ]
        participant.mic = bool(body.get("mic")) and "mic" not in refused
        participant.camera = bool(body.get("camera")) and "camera" not in refused
        self.changed()
        if refused:
            raise MessageRefusedError("not-granted", f"Not allowed: {', '.join(refused)}.")

    async def on_share(self, participant: Participant, body: dict[str, Any]) -> None:
        if not body.get("on"):
            if self.screen == participant.id:
                self.screen = None
                self.changed()
            return
        if not participant.grants.screen:
            raise MessageRefusedError("not-granted", "Not allowed to share the screen.")
        sharer = self.participants.get(self.screen) if self.screen else None
        if sharer is not None and sharer is not participant:
            if not participant.is_teacher:
                raise MessageRefusedError("forbidden", "Someone else is sharing their screen.")
            self.send(sharer, "notice", code="screen-stopped", text="A teacher took over.")
        self.screen = participant.id
        self.changed()

    async def on_hand(self, participant: Participant, body: dict[str, Any]) -> None:
        if body.get("up"):
            if participant.id not in self.hands:
                self.hands.append(participant.id)
        elif participant.id in self.hands:
            self.hands.remove(participant.id)
        self.changed()

    async def on_chat(self, participant: Participant, body: dict[str, Any]) -> None:
        await chat.post(self, participant, body)

    async def on_stage(self, participant: Participant, body: dict[str, Any]) -> None:
        # Kept by the forwarder with the participant's peer connection; a page says it again
        # after every join.
        staged = body["participant"]
        self.forwarder.set_stage(participant.id, () if staged is None else (staged,))

    async def on_offer(self, participant: Participant, body: dict[str, Any]) -> None:
        if participant.negotiating:
            raise MessageRefusedError("busy", "An offer is being answered.")
        try:
            sdp_gate.check_offer(
                body["sdp"],
                max_media_sections=self.max_media_sections,
                allow_loopback=self.settings.allow_loopback,
            )
        except sdp_gate.SdpRejected as rejected:
            raise MessageRefusedError("bad-sdp", rejected.detail) from None
        participant.negotiating = True
        participant.candidates = sum(
            1 for line in body["sdp"].splitlines() if line.startswith("a=candidate:")
        )
        # Answering waits on ICE gathering; Channels hands the consumer one message at a time, so
        # the answer must not hold up this participant's (or anyone's) next message.
        self._spawn(self._negotiate(participant, body["sdp"], dict(body["sources"])))

    async def on_candidate(self, participant: Participant, body: dict[str, Any]) -> None:
        try:
            sdp_gate.check_candidate(body["candidate"], allow_loopback=self.settings.allow_loopback)
        except sdp_gate.SdpRejected as rejected:
            raise MessageRefusedError("bad-sdp", rejected.detail) from None
        if participant.candidates >= sdp_gate.MAX_CANDIDATES:
            raise MessageRefusedError("bad-sdp", "Too many candidates.")
        participant.candidates += 1
        try:
            await self.forwarder.add_candidate(participant.id, body["candidate"], body["sdpMid"])
        except Exception:
            logger.warning("lesson %s: candidate of %s failed", self.lesson_key, participant.id)
            await self.end_peer(participant)
            self.changed()
            raise MessageRefusedError("bad-sdp", "The candidate was refused.") from None

    # --- Lobby -----------------------------------------------------------------------------------

    @property
    def teacher_present(self) -> bool:
        return any(p.is_teacher for p in self.participants.values())

    @property
    def paused(self) -> bool:
        return self.admission.policy.pause_pupils_without_teacher and not self.teacher_present

    def _lobby_reason(self) -> str | None:
        if self.locked:
            return "locked"
        if self.admission.policy.lobby_until_teacher and not self.teacher_present:
            return "waiting-for-teacher"
        return None

    def _settle_lobby_soon(self) -> None:
        self._spawn(self.settle_lobby())

    async def settle_lobby(self) -> None:
        """Let the lobby in when nothing holds it any more; tell it when its reason changes."""
        reason = self._lobby_reason()
        waiting = [p for p in self.participants.values() if p.state == "lobby"]
        for pupil in waiting:
            if reason is None:
                await self.admit(pupil)
            elif pupil.lobby_reason != reason:
                pupil.lobby_reason = reason
                self.send(pupil, "lobby", reason=reason)
        if reason is None and waiting:
            self.changed()

    async def admit(self, pupil: Participant) -> None:
        if pupil.state == "in":
            return
        pupil.state = "in"
        pupil.lobby_reason = None
        self.send(pupil, "admitted", slots=self._slots(pupil))
        await chat.send_history(self, pupil)

    # --- Forwarding ------------------------------------------------------------------------------

    @property
    def max_media_sections(self) -> int:
        """Four to send, two to receive per rostered participant, and headroom.

        The roster bounds who can ever be in the room, so a client never needs more; the most
        participants the room has held only matters when an admission does not know its roster.
        """
        return 4 + 2 * max(self._roster_size, self._peak) + SECTION_HEADROOM

    def _should_forward(self, participant: Participant, source: Source) -> bool:
        switched_on = {
            "mic": participant.mic,
            "camera": participant.camera,
            "screen": self.screen == participant.id,
        }[source]
        return (
            getattr(participant.grants, source)
            and switched_on
            and participant.state == "in"
            and participant.connected
            and not (self.paused and not participant.is_teacher)
        )

    def _apply_forwarding(self) -> None:
        """Tell the forwarder every source whose decision changed since it was last told."""
        teachers = [p.id for p in self.participants.values() if p.is_teacher]
        self.forwarder.set_selection(last_n=self.last_n, pinned=teachers)
        for participant in list(self.participants.values()):
            if not participant.connected:
                continue
            for source in SOURCES:
                key = (participant.id, source)
                wanted = self._should_forward(participant, source)
                if self._forwarding.get(key, False) == wanted:
                    continue
                try:
                    self.forwarder.set_forwarding(participant.id, source, wanted)
                except Exception:
                    logger.exception("lesson %s: forwarding %s failed", self.lesson_key, key)
                    self._spawn(self.end_peer(participant))
                    break
                self._forwarding[key] = wanted

    async def _negotiate(
        self, participant: Participant, sdp: str, sources: Mapping[str, OfferSource]
    ) -> None:
        # The page that offered; a newer tab of the same user must not get this offer's answer.
        page = participant.connection
        try:
            answer = await self.forwarder.negotiate(participant.id, sdp, sources)
        except NegotiationError as error:
            page.send(signalling.dump("error", code="bad-sdp", detail=str(error) or "Bad offer."))
        except Exception:
            logger.exception("lesson %s: offer of %s failed", self.lesson_key, participant.id)
            page.send(signalling.dump("error", code="bad-sdp", detail="The offer failed."))
            if participant.connection is page:
                await self.end_peer(participant)
                self.changed()
        else:
            if self.participants.get(participant.id) is participant:
                page.send(signalling.dump("answer", sdp=answer))
        finally:
            if participant.connection is page:
                participant.negotiating = False

    async def end_peer(self, participant: Participant, *, left_at: datetime | None = None) -> None:
        """End one participant's peer connection; everyone else's goes on."""
        for source in SOURCES:
            self._forwarding.pop((participant.id, source), None)
        if participant.connected:
            participant.connected = False
            self._attendance.record(participant.id, opened=False, at=left_at)
        if self._forwarder is not None:
            try:
                await self._forwarder.remove(participant.id)
            except Exception:
                logger.exception("lesson %s: removing %s failed", self.lesson_key, participant.id)

    def _on_peer_state(self, user_id: str, state: PeerState) -> None:
        participant = self.participants.get(user_id)
        if participant is None or self.closed:
            return
        if state == "connected" and not participant.connected:
            participant.connected = True
            self._attendance.record(participant.id, opened=True)
        elif state != "connected" and participant.connected:
            participant.connected = False
            for source in SOURCES:
                self._forwarding.pop((participant.id, source), None)
            self._attendance.record(participant.id, opened=False)
        self.changed()

    def _on_tracks(self, user_id: str, mids: Mapping[str, SlotTrack | None]) -> None:
        participant = self.participants.get(user_id)
        if participant is None:
            return
        carried = {
            mid: None if slot is None else {"participant": slot.participant, "source": slot.source}
            for mid, slot in mids.items()
        }
        self.send(participant, "tracks", mids=carried)

    def _on_slots_wanted(self, user_id: str, audio: int, video: int) -> None:
        participant = self.participants.get(user_id)
        if participant is not None and participant.state == "in":
            self.send(participant, "slots", audio=audio, video=video)

    def _on_speakers(self, speakers: Sequence[str]) -> None:
        self.speakers = tuple(speakers)
        self.changed()

    def _slots(self, participant: Participant) -> dict[str, int]:
        audio, video = self.forwarder.slots_wanted(participant.id)
        return {"audio": audio, "video": video}

    # --- Snapshots -------------------------------------------------------------------------------

    def changed(self) -> None:
        """After every change: enforce forwarding now, and send the snapshots soon.

        Forwarding follows at once (a mute silences within the message that asked for it). The
        snapshots are coalesced: one per participant at most every `snapshot_seconds`, showing the
        room as it is when they leave, because a snapshot per input costs every participant a
        message the size of the class for every hand, switch and share of everyone.
        """
        if self.closed:
            return
        self._apply_forwarding()
        if self._snapshots is None:
            self._snapshots = asyncio.create_task(self._send_snapshots())
            self._snapshots.add_done_callback(self._finished)

    async def _send_snapshots(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(
            max(0.0, self._last_snapshots + self.settings.snapshot_seconds - loop.time())
        )
        # Changes from here on start the next round.
        self._snapshots = None
        self._last_snapshots = loop.time()
        for participant in self.participants.values():
            self.send(participant, "room", **self.snapshot_for(participant))

    def snapshot_for(self, viewer: Participant) -> dict[str, Any]:
        """The room as `viewer` may see it: pupils see who is in, teachers the lobby too."""
        visible = [p for p in self.participants.values() if viewer.is_teacher or p.state == "in"]
        visible.sort(key=lambda p: (not p.is_teacher, p.name, p.id))
        visible_ids = {p.id for p in visible}
        snapshot: dict[str, Any] = {
            "locked": self.locked,
            "teacherPresent": self.teacher_present,
            "paused": self.paused,
            "screen": self.screen,
            "participants": [describe(p, screen=self.screen, hands=self.hands) for p in visible],
            "hands": list(self.hands),
            "speakers": [user_id for user_id in self.speakers if user_id in visible_ids],
            "layout": self.layout,
            "lastN": self.last_n,
        }
        snapshot["removed"] = (
            [{"id": user_id, "name": name} for user_id, name in self.removed.items()]
            if viewer.is_teacher
            else []
        )
        return snapshot

    # --- Helpers ---------------------------------------------------------------------------------

    def _connected_ids(self) -> list[int]:
        return [int(p.id) for p in self.participants.values() if p.connected]

    def members(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.state == "in"]

    def forget(self, participant: Participant) -> None:
        if participant.id in self.hands:
            self.hands.remove(participant.id)
        if self.screen == participant.id:
            self.screen = None

    def send(self, participant: Participant, kind: str, **body: Any) -> None:
        participant.connection.send(signalling.dump(kind, **body))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "lesson %s: background work failed", self.lesson_key, exc_info=task.exception()
            )

    def _rtc_ice_servers(self) -> list[RTCIceServer]:
        return [RTCIceServer(**server) for server in self.settings.ice_servers]


class RoomRegistry:
    """The rooms this process holds, by lesson key."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}

    def get(self, lesson_key: str) -> Room | None:
        return self._rooms.get(lesson_key)

    def room_for(self, admission: Admission, build: Callable[[], Room]) -> Room:
        room = self._rooms.get(admission.lesson_key)
        if room is None or room.closed:
            room = build()
            room.on_empty = self._drop
            self._rooms[admission.lesson_key] = room
        return room

    def _drop(self, room: Room) -> None:
        if self._rooms.get(room.lesson_key) is room:
            del self._rooms[room.lesson_key]
