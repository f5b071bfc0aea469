"""A lesson's media: one peer connection per participant, encoded frames forwarded between them.

INTERFACE DRAFT (owned by the forwarding work; the room codes against these signatures).

Each participant has one `RTCPeerConnection` with the relay, and the browser is always the
offerer. Its offer carries up to three sending transceivers (`mic`, `camera`, `screen`, named by
the `sources` map) and any number of `recvonly` transceivers: its receive slots. A source that is
forwarding is attached to one free slot of its kind on every other participant; frames flow from
the publisher's receiver to those slots' senders without decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from aiortc import RTCIceServer

Source = Literal["mic", "camera", "screen"]
PeerState = Literal["connected", "failed", "closed"]


@dataclass(frozen=True)
class SlotTrack:
    """What one receive slot carries: a participant's source."""

    participant: str
    source: Source


class NegotiationError(Exception):
    """An offer could not be answered; the participant's previous connection (if any) goes on."""


class LessonForwarder:
    """Forwards media between the participants of one lesson. Asyncio; no Django.

    Callbacks are plain functions called from the event loop; they must not block:
    - `on_peer_state(participant, state)`: the participant's peer connection reached
      `connected`, or ended (`failed` or `closed`, reported once).
    - `on_tracks(participant, mids)`: the full map of that participant's receive slots
      (mid -> SlotTrack, or None when free), after every change.
    - `on_slots_wanted(participant, audio, video)`: that participant needs this many receive slots
      of each kind in all; the room relays it as a `slots` message.
    """

    def __init__(
        self,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        on_peer_state: Callable[[str, PeerState], None],
        on_tracks: Callable[[str, Mapping[str, SlotTrack | None]], None],
        on_slots_wanted: Callable[[str, int, int], None],
    ) -> None:
        raise NotImplementedError

    async def negotiate(
        self, participant: str, offer_sdp: str, sources: Mapping[str, Source]
    ) -> str:
        """Answer a participant's offer (first or later); return the answer SDP.

        The first offer creates the participant's peer connection; a later one renegotiates it (new
        receive slots); an offer after the connection ended replaces it. Only VP8 and Opus are
        negotiated. Raises NegotiationError on any failure (aiortc's exceptions included); the
        lesson goes on for everyone else.
        """
        raise NotImplementedError

    async def add_candidate(self, participant: str, candidate: str, sdp_mid: str) -> None:
        """Add a trickled remote ICE candidate (already checked by the SDP gate)."""
        raise NotImplementedError

    def slots_wanted(self, participant: str) -> tuple[int, int]:
        """How many (audio, video) receive slots the participant should offer now."""
        raise NotImplementedError

    def set_forwarding(self, participant: str, source: Source, on: bool) -> None:
        """Start or stop forwarding a participant's source to everyone else.

        Takes effect at once: after it returns, not one more packet of that source leaves the
        relay when `on` is False (frames already queued for subscribers are dropped too). When on,
        the source gets a slot on every other participant and a keyframe is requested for video.
        """
        raise NotImplementedError

    async def remove(self, participant: str) -> None:
        """Close the participant's peer connection and free their sources' slots everywhere."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close every peer connection. Idempotent."""
        raise NotImplementedError
