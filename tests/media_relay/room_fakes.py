"""Stand-ins for the room's collaborators: a recorder in memory, a forwarder that only remembers,
and a socket that keeps what the room sent it. They let the room's rules be tested without a
database, aiortc or a network."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiortc import RTCIceServer

from media_relay.forwarding import OfferSource, PeerState, SlotTrack, Source
from media_relay.ports import ChatLine, Grants


@dataclass
class MemoryRecorder:
    """A LessonRecorder keeping everything in lists; `calls` names every call in order."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    chat: list[ChatLine] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)

    def _called(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for called, kwargs in self.calls if called == name]

    def presence_opened(self, *, lesson_id: int, user_id: int, at: datetime) -> None:
        self._called("presence_opened", lesson_id=lesson_id, user_id=user_id, at=at)

    def presence_closed(self, *, lesson_id: int, user_id: int, at: datetime) -> None:
        self._called("presence_closed", lesson_id=lesson_id, user_id=user_id, at=at)

    def presence_seen(self, *, lesson_id: int, user_ids: Sequence[int], at: datetime) -> None:
        self._called("presence_seen", lesson_id=lesson_id, user_ids=list(user_ids), at=at)

    def grants_saved(
        self, *, lesson_id: int, user_id: int, grants: Grants, by_user_id: int
    ) -> None:
        self._called("grants_saved", user_id=user_id, grants=grants, by_user_id=by_user_id)

    def participant_removed(self, *, lesson_id: int, user_id: int, by_user_id: int) -> None:
        self._called("participant_removed", user_id=user_id, by_user_id=by_user_id)

    def participant_readmitted(self, *, lesson_id: int, user_id: int, by_user_id: int) -> None:
        self._called("participant_readmitted", user_id=user_id, by_user_id=by_user_id)

    def chat_posted(self, *, lesson_id: int, user_id: int, body: str) -> ChatLine:
        line = ChatLine(
            id=len(self.chat) + 1,
            author_id=user_id,
            author_name=self.names.get(user_id, f"User {user_id}"),
            body=body,
            sent_at=datetime.now(UTC),
        )
        self.chat.append(line)
        return line

    def chat_deleted(self, *, lesson_id: int, message_id: int, by_user_id: int) -> bool:
        before = len(self.chat)
        self.chat = [line for line in self.chat if line.id != message_id]
        return len(self.chat) < before

    def chat_history(self, *, lesson_id: int, limit: int) -> list[ChatLine]:
        return self.chat[-limit:]

    def lesson_ended(self, *, lesson_id: int, by_user_id: int) -> None:
        self._called("lesson_ended", by_user_id=by_user_id)


@dataclass
class SpyForwarder:
    """A LessonForwarder that answers offers and remembers what it was told to forward.

    With `failure` set, every offer raises it; with `hold` set, offers wait for it. Tests drive
    the callbacks to play the peer connections.
    """

    on_peer_state: Callable[[str, PeerState], None]
    on_tracks: Callable[[str, Mapping[str, SlotTrack | None]], None]
    on_slots_wanted: Callable[[str, int, int], None]
    on_speakers: Callable[[Sequence[str]], None] = lambda speakers: None
    ice_servers: Sequence[RTCIceServer] = ()
    forwarding: dict[tuple[str, Source], bool] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    candidates: list[tuple[str, str, str]] = field(default_factory=list)
    offers: list[tuple[str, dict[str, OfferSource]]] = field(default_factory=list)
    stages: dict[str, frozenset[str] | None] = field(default_factory=dict)
    """Whose cameras each participant said it shows large (`stage`)."""
    selection: tuple[int, frozenset[str]] | None = None
    """The last (last_n, pinned) the room set."""
    failure: Exception | None = None
    hold: asyncio.Event | None = None
    closed: bool = False

    def forwarded(self) -> set[tuple[str, Source]]:
        return {key for key, on in self.forwarding.items() if on}

    async def negotiate(
        self, participant: str, offer_sdp: str, sources: Mapping[str, OfferSource]
    ) -> str:
        self.offers.append((participant, dict(sources)))
        if self.hold is not None:
            await self.hold.wait()
        if self.failure is not None:
            raise self.failure
        return f"answer for {participant}"

    async def add_candidate(self, participant: str, candidate: str, sdp_mid: str) -> None:
        self.candidates.append((participant, candidate, sdp_mid))

    def slots_wanted(self, participant: str) -> tuple[int, int]:
        return (2, 3)

    def set_forwarding(self, participant: str, source: Source, on: bool) -> None:
        self.forwarding[(participant, source)] = on

    def set_selection(self, *, last_n: int, pinned: Collection[str]) -> None:
        self.selection = (last_n, frozenset(pinned))

    def set_stage(self, participant: str, staged: Collection[str] | None) -> None:
        self.stages[participant] = None if staged is None else frozenset(staged)

    async def remove(self, participant: str) -> None:
        self.removed.append(participant)
        self.forwarding = {k: v for k, v in self.forwarding.items() if k[0] != participant}

    async def close(self) -> None:
        self.closed = True


class RecordingSocket:
    """A Connection that keeps the messages the room sent it, decoded, and its close code."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.closed_with: int | None = None

    def send(self, text: str) -> None:
        if self.closed_with is None:
            self.messages.append(json.loads(text))

    def close(self, code: int) -> None:
        if self.closed_with is None:
            self.closed_with = code

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [message for message in self.messages if message["type"] == kind]

    def last(self, kind: str) -> dict[str, Any]:
        return self.of_type(kind)[-1]
