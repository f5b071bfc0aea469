"""A lesson's media: one peer connection per participant, RTP packets forwarded between them.

Each participant has one `RTCPeerConnection` with the relay, and the browser is always the
offerer. Its offer carries up to four sending transceivers (`mic`, `camera`, `screen`, and
`camera-low`, named by the `sources` map) and any number of `recvonly` transceivers: its receive
slots. A source that is
forwarding is attached to one free slot of its kind on every other participant whose selection
holds it (`media_relay.selection`: the top three speakers' microphones, last-N video). Each RTP
packet the publisher's receiver gets (after SRTP and RTX) is sent on to those slots at once, its
header rewritten for each (`media_relay.rtp_fanout`), without reassembling, decoding or a
coroutine per subscriber; aiortc keeps doing ICE, DTLS, RTCP and NACKs for the publisher's leg
(`media_relay.aiortc_internals` holds every reach into its internals).

Simulcast: aiortc's SDP knows no rid or simulcast, so a browser sends its camera twice, on the
`camera` transceiver (full size) and on `camera-low` (a quarter of the pixels, ~150 kbit/s): two
layers of one source, forwarded and moderated as one. Each subscriber gets the high layer of the
cameras on its large tile (its `stage`, the teachers' until it says) and the low layer of the
others; the large tile falls back to the low layer when the subscriber's bandwidth estimate (its
REMB) cannot carry it. A slot that changes layer keeps the old one until the new one's next
keyframe, which is asked for, then carries on with a continuous sequence and timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.sdp import SessionDescription, candidate_from_sdp

from media_relay import pacing
from media_relay._fanout import Slot as FanoutSlot
from media_relay._fanout import Stream
from media_relay.aiortc_internals import (
    ReceiverTap,
    SenderLeg,
    hook_bandwidth_estimates,
    hook_keyframe_requests,
    hook_retransmissions,
    hook_sender_start,
    read_in_batches,
    tap_receiver_packets,
)
from media_relay.rtp_fanout import SlotOutput, SlotStats
from media_relay.selection import (
    DEFAULT_LAST_N,
    SILENCE,
    SMOOTHING,
    STALE_SECONDS,
    Selection,
    SpeakerTracker,
    select,
)
from media_relay.wakeups import hold_reads

logger = logging.getLogger(__name__)

Source = Literal["mic", "camera", "screen"]
OfferSource = Literal["mic", "camera", "screen", "camera-low"]
"""What an offer's sending transceiver carries: a source, or the low simulcast layer of one."""
PeerState = Literal["connected", "failed", "closed"]
Kind = Literal["audio", "video"]

SOURCE_KINDS: Mapping[OfferSource, Kind] = {
    "mic": "audio",
    "camera": "video",
    "screen": "video",
    "camera-low": "video",
}
SOURCES: tuple[Source, ...] = ("mic", "camera", "screen")
# The low layer of a source, and the source of a low layer.
LOW_LAYERS: Mapping[Source, OfferSource] = {"camera": "camera-low"}
LAYER_OF: Mapping[OfferSource, Source] = {"camera-low": "camera"}
# Spare receive slots per kind, so that a join rarely makes everyone renegotiate.
SLOT_HEADROOM = 2
# At most one keyframe request per publisher source in this window: every subscriber's PLI would
# otherwise make the publisher send keyframes back to back.
KEYFRAME_REQUEST_INTERVAL = 0.4
# A peer connection not connected by then has failed: aiortc raises some errors (a bad DTLS
# fingerprint, say) in a background task, after the answer, and then never changes state.
CONNECT_TIMEOUT = 20.0
# How often the speakers are picked again from the levels heard (selection waits on this).
SPEAKER_INTERVAL = 0.25
# How often the layers' bitrates are measured and every slot's layer chosen again.
LAYER_INTERVAL = 0.5
# A subscriber's REMB older than this says nothing about its bandwidth now.
ESTIMATE_STALE = 5.0
# A browser's estimate climbs while the path is clear (to at most 1.5 times what it receives) and
# drops to 0.85 times what it receives when the path is congested: a falling estimate below this
# share of what the subscriber receives says its path is congested. A rising one never does: it
# is still catching up with a layer just switched to.
CONGESTED_BELOW = 0.9
FALLING_BELOW = 0.95
# A single dip (a busy machine's delays look like a queue to a browser) is not congestion.
CONGESTED_FOR = 1.0
# After falling back to the low layer for want of bandwidth, the high layer is tried again after
# this long, then twice as long after each fall within a minute of a try, up to the maximum: the
# estimate cannot rise much above what the subscriber receives, so trying is the only probe.
RETRY_AFTER, RETRY_AFTER_MAX = 8.0, 64.0


@dataclass(frozen=True)
class SlotTrack:
    """What one receive slot carries: a participant's source."""

    participant: str
    source: Source


class NegotiationError(Exception):
    """An offer could not be answered: that participant's peer connection is closed, no other."""


@dataclass
class SourceStats:
    """Counters of one publisher source."""

    frames_received: int = 0
    frames_forwarded: int = 0
    keyframes_received: int = 0
    keyframe_requests_sent: int = 0
    subscriber_keyframe_requests: int = 0
    bitrate: float = 0.0
    """Bits per second of payload, smoothed over ~2 s (measured twice a second)."""


@dataclass(frozen=True)
class ForwardingStats:
    """A snapshot of the counters, keyed by (participant, source or layer), (participant, mid).

    `layers` says which layer each video slot carries now: (participant, mid) -> the
    `OfferSource` of the stream in it (`camera` or `camera-low` for a camera).
    """

    sources: Mapping[tuple[str, OfferSource], SourceStats]
    slots: Mapping[tuple[str, str], SlotStats]
    layers: Mapping[tuple[str, str], OfferSource] = field(default_factory=dict)


def is_vp8_keyframe(data: bytes) -> bool:
    """A VP8 frame is a keyframe when bit 0 of its first byte (the inverse key frame flag) is 0."""
    return bool(data) and data[0] & 0x01 == 0


class ForwardedTrack(MediaStreamTrack):
    """A receive slot's track as its aiortc sender sees it: it never yields a frame.

    The slot's packets reach the subscriber through the sender's `SenderLeg`, not through the
    sender's own RTP loop, which waits on this track until the slot ends.
    """

    def __init__(self, kind: Kind) -> None:
        super().__init__()
        self.kind = kind
        self._ended = asyncio.Event()

    async def recv(self) -> None:  # type: ignore[override]
        await self._ended.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._ended.set()


@dataclass(eq=False)
class _Publication:
    """One stream a participant sends to the relay: a source, or a source's low layer."""

    participant: str
    source: OfferSource
    tap: ReceiverTap | None = None
    fanout: list[FanoutSlot] = field(default_factory=list)
    """The compiled slots of the subscribers this stream goes to, which the fan-out loop walks."""
    switching: list[_Slot] = field(default_factory=list)
    """Slots that move to this stream (a layer change) at its next keyframe."""
    stats: SourceStats = field(default_factory=SourceStats)
    """Its Python-side counters; what the compiled stream counts per packet is in `stream`."""
    last_keyframe_request: float = float("-inf")
    keyframe_request_pending: bool = False
    silent: bool = False
    """Nothing arrived in the last measured interval."""

    def __post_init__(self) -> None:
        self.stream = Stream(self.kind == "video")
        """What each of its packets goes through (`media_relay._fanout`): the fan-out to
        `fanout`, the counters, and events into Python."""
        self.stream.fanout = self.fanout

    @property
    def kind(self) -> Kind:
        return SOURCE_KINDS[self.source]

    def switch_at_next_keyframe(self, slot: _Slot | None = None, *, waits: bool = True) -> None:
        """`slot` waits (or no longer waits) for this stream's next keyframe to move to it."""
        if slot is not None:
            if waits:
                self.switching.append(slot)
            else:
                self.switching.remove(slot)
        self.stream.switching = bool(self.switching)


@dataclass(eq=False)
class _Slot:
    """One receive slot of a subscriber: its sender's track and what it carries."""

    mid: str
    kind: Kind
    track: ForwardedTrack
    output: SlotOutput
    carries: _Publication | None = None
    """The source the slot carries (for a camera, its high layer's publication)."""
    layer: _Publication | None = None
    """The stream whose packets the slot gets now: `carries`, or its low layer."""
    switching_to: _Publication | None = None


@dataclass(eq=False)
class _Peer:
    participant: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pc: RTCPeerConnection | None = None
    # Mid -> role of each transceiver already created, in offer order.
    roles: dict[str, OfferSource | Kind | None] = field(default_factory=dict)
    slots: dict[str, _Slot] = field(default_factory=dict)
    connected_reported: bool = False
    ended: bool = False
    stage: frozenset[str] | None = None
    """Whose cameras the participant's page shows large (None: not said, the teachers')."""
    estimate: int | None = None
    """The latest REMB from the participant's browser (bits per second) and when it came."""
    estimate_at: float = float("-inf")
    estimate_peak: int = 0
    """The highest estimate since the large tile last fell back (or since the first)."""
    estimate_falling: bool = False
    congested_since: float | None = None
    constrained_until: float = float("-inf")
    """Until then the participant's large tile stays on the low layer (its path was congested)."""
    retry_after: float = RETRY_AFTER
    last_try: float = float("-inf")


class LessonForwarder:
    """Forwards media between the participants of one lesson. Asyncio; no Django.

    Callbacks are plain functions called from the event loop; they must not block:
    - `on_peer_state(participant, state)`: the participant's peer connection reached
      `connected`, or ended (`failed` or `closed`, reported once per peer connection).
    - `on_tracks(participant, mids)`: the full map of that participant's receive slots
      (mid -> SlotTrack, or None when free), after every change (for a new offer, before
      `negotiate` returns).
    - `on_slots_wanted(participant, audio, video)`: that participant needs this many receive slots
      of each kind in all; the room relays it as a `slots` message.
    - `on_speakers(participants)`: the active speakers changed (media_relay.selection).

    Each subscriber receives only what `media_relay.selection.select` picks for it: the top three
    microphones and last-N video (see `set_selection`); with `selective=False` (a stress
    benchmark), everything everyone else publishes.
    """

    def __init__(
        self,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        on_peer_state: Callable[[str, PeerState], None],
        on_tracks: Callable[[str, Mapping[str, SlotTrack | None]], None],
        on_slots_wanted: Callable[[str, int, int], None],
        on_speakers: Callable[[Sequence[str]], None] = lambda speakers: None,
        connect_timeout: float = CONNECT_TIMEOUT,
        selective: bool = True,
    ) -> None:
        # Max-bundle: every transceiver on the first one's transport from the start. With aiortc's
        # default (balanced), transceivers added before the offer is applied keep a per-kind
        # transport that applying the offer's BUNDLE group then stops, and their media never flows.
        self._configuration = RTCConfiguration(
            iceServers=list(ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
        )
        self._on_peer_state = on_peer_state
        self._on_tracks = on_tracks
        self._on_slots_wanted = on_slots_wanted
        self._on_speakers = on_speakers
        self._connect_timeout = connect_timeout
        # Without selection everyone receives everyone (the relay-full stress benchmark).
        self._selective = selective
        self._peers: dict[str, _Peer] = {}
        self._publications: dict[tuple[str, OfferSource], _Publication] = {}
        self._forwarding: set[tuple[str, Source]] = set()
        self._slots_wanted_sent: dict[str, tuple[int, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reporting = False
        self._closed = False
        self._speakers = SpeakerTracker()
        self._last_n = DEFAULT_LAST_N
        self._pinned: frozenset[str] = frozenset()

    # Negotiation

    async def negotiate(
        self, participant: str, offer_sdp: str, sources: Mapping[str, OfferSource]
    ) -> str:
        """Answer a participant's offer (first or later); return the answer SDP.

        The first offer creates the participant's peer connection; a later one renegotiates it (new
        receive slots); an offer after the connection ended replaces it. Only VP8 and Opus are
        negotiated. Raises NegotiationError on any failure (aiortc's exceptions included): that
        participant's peer connection is closed, the lesson goes on for everyone else.
        """
        if self._closed:
            raise NegotiationError("the lesson's relay is closed")
        peer = self._peers.setdefault(participant, _Peer(participant))
        async with peer.lock:
            pc = peer.pc
            if pc is None or peer.ended:
                await self._end_peer(peer, None)
                pc = self._start_peer(peer)
                self._spawn(self._fail_unless_connected(peer, pc))
            try:
                answer = await self._answer(peer, pc, offer_sdp, sources)
            except Exception as exc:
                logger.info("offer of %s failed: %r", participant, exc)
                await self._end_peer(peer, "failed")
                raise NegotiationError(str(exc) or type(exc).__name__) from exc
        self._slots_wanted_sent.pop(participant, None)
        self._rebalance()
        # The room maps the offer's new slots for the client even when nothing moved.
        self._on_tracks(participant, self._track_map(peer))
        return answer

    async def _fail_unless_connected(self, peer: _Peer, pc: RTCPeerConnection) -> None:
        await asyncio.sleep(self._connect_timeout)
        if peer.pc is pc and not peer.connected_reported:
            await self._end_peer(peer, "failed")

    def _start_peer(self, peer: _Peer) -> RTCPeerConnection:
        if not self._reporting:
            self._reporting = True
            self._spawn(self._follow_speakers())
            self._spawn(self._measure_layers())
        pc = RTCPeerConnection(self._configuration)
        peer.pc = pc
        peer.roles = {}
        peer.slots = {}
        peer.connected_reported = False
        peer.ended = False

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if peer.pc is not pc or peer.ended:
                return
            if pc.connectionState == "connected" and not peer.connected_reported:
                peer.connected_reported = True
                read_in_batches(pc)
                hold_reads(asyncio.get_running_loop())
                self._on_peer_state(peer.participant, "connected")
            elif pc.connectionState == "failed":
                self._spawn(self._end_peer(peer, "failed"))
            elif pc.connectionState == "closed":
                self._spawn(self._end_peer(peer, "closed"))

        return pc

    async def _answer(
        self, peer: _Peer, pc: RTCPeerConnection, offer_sdp: str, sources: Mapping[str, OfferSource]
    ) -> str:
        offer = SessionDescription.parse(offer_sdp)
        expected: dict[RTCRtpTransceiver, str] = {}
        for media in offer.media:
            mid = media.rtp.muxId
            kind: Kind
            if media.kind == "audio":
                kind = "audio"
            elif media.kind == "video":
                kind = "video"
            else:
                raise ValueError(f"media section {mid!r} is not audio or video")
            if mid is None:
                raise ValueError("a media section has no mid")
            if mid in peer.roles:
                continue
            expected[self._add_transceiver(peer, pc, mid, kind, media.direction, sources)] = mid
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for transceiver, mid in expected.items():
            # aiortc gives each new m-line the first unused transceiver of its kind, in order.
            if transceiver.mid != mid:
                raise ValueError(f"transceiver for {mid!r} got {transceiver.mid!r}")
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    def _add_transceiver(
        self,
        peer: _Peer,
        pc: RTCPeerConnection,
        mid: str,
        kind: Kind,
        direction: str | None,
        sources: Mapping[str, OfferSource],
    ) -> RTCRtpTransceiver:
        source = sources.get(mid)
        if source is not None and SOURCE_KINDS[source] != kind:
            raise ValueError(f"mid {mid!r} is {kind}, not a {source}")
        if source is not None and direction in ("sendonly", "sendrecv"):
            transceiver = pc.addTransceiver(kind, direction="recvonly")
            publication = self._publication(peer.participant, source)
            publication.tap = tap_receiver_packets(transceiver.receiver, publication.stream)
            peer.roles[mid] = source
        elif source is None and direction == "recvonly":
            track = ForwardedTrack(kind)
            transceiver = pc.addTransceiver(track, direction="sendonly")
            output = SlotOutput(kind, SenderLeg(transceiver.sender))
            slot = peer.slots[mid] = _Slot(mid, kind, track, output)
            hook_sender_start(
                transceiver.sender, lambda parameters: self._on_slot_started(slot, parameters)
            )
            hook_retransmissions(transceiver.sender, output.retransmit)
            hook_keyframe_requests(
                transceiver.sender, lambda: self._on_subscriber_keyframe_request(peer, mid)
            )
            hook_bandwidth_estimates(
                transceiver.sender, lambda bitrate, ssrcs: self._on_estimate(peer, bitrate, ssrcs)
            )
            peer.roles[mid] = kind
        else:
            transceiver = pc.addTransceiver(kind, direction="inactive")
            peer.roles[mid] = None
        transceiver.setCodecPreferences(_pinned_codecs(kind))
        return transceiver

    async def add_candidate(self, participant: str, candidate: str, sdp_mid: str) -> None:
        """Add a trickled remote ICE candidate (already checked by the SDP gate)."""
        peer = self._peers.get(participant)
        if peer is None or peer.pc is None or peer.ended:
            raise NegotiationError(f"{participant} has no peer connection")
        try:
            ice_candidate = candidate_from_sdp(candidate.removeprefix("candidate:"))
            ice_candidate.sdpMid = sdp_mid
            await peer.pc.addIceCandidate(ice_candidate)
        except Exception as exc:
            raise NegotiationError(f"bad candidate: {exc!r}") from exc

    # Forwarding decisions

    def slots_wanted(self, participant: str) -> tuple[int, int]:
        """How many (audio, video) receive slots the participant should offer now.

        As many as its selection holds (at most three audio, last-N video plus pinned), whatever
        the size of the class, and headroom.
        """
        selection = self._selection_for(participant, list(self._forwarding), ())
        return len(selection.audio) + SLOT_HEADROOM, len(selection.video) + SLOT_HEADROOM

    def set_selection(self, *, last_n: int, pinned: Collection[str]) -> None:
        """Each subscriber receives last-N video, and always the cameras of `pinned` (teachers)."""
        if last_n < 1:
            raise ValueError("last_n must be at least 1.")
        pinned = frozenset(pinned)
        if (last_n, pinned) == (self._last_n, self._pinned):
            return
        self._last_n, self._pinned = last_n, pinned
        self._rebalance()

    @property
    def speakers(self) -> tuple[str, ...]:
        """The active speakers now (media_relay.selection.SpeakerTracker)."""
        return self._speakers.speakers

    def _selection_for(
        self,
        participant: str,
        publishing: Sequence[tuple[str, Source]],
        ranking: Sequence[str],
    ) -> Selection:
        if not self._selective:
            others = [key for key in publishing if key[0] != participant]
            return Selection(
                audio=frozenset(key for key in others if key[1] == "mic"),
                video=frozenset(key for key in others if key[1] != "mic"),
            )
        return select(
            subscriber=participant,
            publishing=publishing,
            ranking=ranking,
            pinned=self._pinned,
            last_n=self._last_n,
        )

    def set_forwarding(self, participant: str, source: Source, on: bool) -> None:
        """Start or stop forwarding a participant's source to everyone else.

        Takes effect at once: after it returns, not one more packet of that source leaves the
        relay when `on` is False (frames already queued for subscribers are dropped too). When on,
        the source gets a slot on every other participant and a keyframe is requested for video.
        """
        key = (participant, source)
        if on:
            self._forwarding.add(key)
        else:
            self._forwarding.discard(key)
        self._rebalance()

    def set_stage(self, participant: str, staged: Collection[str] | None) -> None:
        """Whose cameras the participant shows on its large tile (None: the teachers', as before
        the participant said): those get the high layer, bandwidth permitting; others the low."""
        peer = self._peers.get(participant)
        if peer is None:
            return
        peer.stage = None if staged is None else frozenset(staged)
        self._choose_layers()

    def _publication(self, participant: str, source: OfferSource) -> _Publication:
        key = (participant, source)
        publication = self._publications.get(key)
        if publication is None:
            publication = self._publications[key] = _Publication(participant, source)
            stream = publication.stream
            if publication.kind == "audio":
                stream.listen(SILENCE, SMOOTHING, STALE_SECONDS)
            else:
                stream.on_switch = lambda: self._switch_at_keyframe(publication)
                stream.on_held = lambda: self._request_keyframe(publication)
            stream.on_waiting = pacing.datagrams_waiting
        return publication

    def _is_live(self, publication: _Publication) -> bool:
        """Forwarded now: a low layer is when its source is."""
        peer = self._peers.get(publication.participant)
        source = LAYER_OF.get(publication.source, publication.source)
        return (
            (publication.participant, source) in self._forwarding
            and publication.tap is not None
            and peer is not None
            and not peer.ended
        )

    def _rebalance(self) -> None:
        """Bring every slot in line with what its subscriber should receive; report changes.

        A slot whose source is no longer selected for its subscriber is detached first, so that a
        newly selected source can take it over at once (from a keyframe, for video).
        """
        live: dict[tuple[str, Source], _Publication] = {}
        for publication in self._publications.values():
            # The compiled stream forwards (and hears levels) only while this holds.
            publication.stream.live = self._is_live(publication)
            source = _main_source(publication.source)
            if source is not None and publication.stream.live:
                live[(publication.participant, source)] = publication
        ranking = self._speakers.ranking(dict.fromkeys(key[0] for key in live))
        changed: set[str] = set()
        wanted: set[str] = set()
        for peer in self._peers.values():
            selection = self._selection_for(peer.participant, list(live), ranking)
            for slot in peer.slots.values():
                carries = slot.carries
                if carries is None:
                    continue
                key = (carries.participant, cast(Source, carries.source))
                gone = live.get(key) is not carries
                if key not in selection or gone:
                    # Still live, only no longer selected (another speaker took its place): its
                    # waiting video leaves, so the slot's numbering has no gap. Otherwise (its
                    # camera stopped, a moderator, the publisher gone) nothing more of it leaves.
                    self._detach(slot, drop_waiting=gone)
                    changed.add(peer.participant)
            if peer.ended or peer.pc is None:
                continue
            carried = {slot.carries for slot in peer.slots.values()}
            for key, publication in live.items():
                if key not in selection or publication in carried:
                    continue
                free = next(
                    (
                        s
                        for s in peer.slots.values()
                        if s.kind == publication.kind and s.carries is None
                    ),
                    None,
                )
                if free is None:
                    wanted.add(peer.participant)
                    continue
                self._attach(peer, free, publication)
                changed.add(peer.participant)
        self._choose_layers()
        for participant in changed:
            self._on_tracks(participant, self._track_map(self._peers[participant]))
        for participant in wanted:
            want = self.slots_wanted(participant)
            if self._slots_wanted_sent.get(participant) != want:
                self._slots_wanted_sent[participant] = want
                self._on_slots_wanted(participant, *want)

    def _attach(self, peer: _Peer, slot: _Slot, publication: _Publication) -> None:
        slot.carries = publication
        self._enter_layer(slot, self._wanted_layer(peer, publication))

    def _enter_layer(self, slot: _Slot, layer: _Publication) -> None:
        """Carry `layer` from its next keyframe (video), leaving any other stream at once."""
        self._leave_layer(slot)
        slot.layer = layer
        slot.output.start_source()
        layer.fanout.append(slot.output.slot)
        # A slot whose sender has not started asks when it starts (`_on_slot_started`): a
        # keyframe sent now would go by unsent, and browsers ignore a second request within
        # ~300 ms of a keyframe, so the joiner would wait for its first frame.
        if layer.kind == "video" and slot.output.ready:
            self._request_keyframe(layer)

    def _leave_layer(self, slot: _Slot) -> None:
        if slot.switching_to is not None:
            slot.switching_to.switch_at_next_keyframe(slot, waits=False)
            slot.switching_to = None
        if slot.layer is not None:
            slot.layer.fanout.remove(slot.output.slot)
            slot.layer = None

    def _detach(self, slot: _Slot, *, drop_waiting: bool = True) -> None:
        self._leave_layer(slot)
        slot.carries = None
        slot.output.stop_source(drop_waiting=drop_waiting)

    @staticmethod
    def _track_map(peer: _Peer) -> dict[str, SlotTrack | None]:
        return {
            mid: None
            if slot.carries is None
            else SlotTrack(slot.carries.participant, cast(Source, slot.carries.source))
            for mid, slot in peer.slots.items()
        }

    # Simulcast layers

    def _low_layer(self, publication: _Publication) -> _Publication | None:
        """The source's low layer, when its publisher sends one.

        A low layer that has gone silent while the high one is not (a page that names one but
        does not send it) counts as none: its slots would wait for a keyframe that never comes.
        """
        low_source = LOW_LAYERS.get(cast(Source, publication.source))
        if low_source is None:
            return None
        low = self._publications.get((publication.participant, low_source))
        if low is None or low.tap is None or (low.silent and not publication.silent):
            return None
        return low

    def _staged(self, peer: _Peer) -> frozenset[str]:
        return self._pinned if peer.stage is None else peer.stage

    def _wanted_layer(self, peer: _Peer, publication: _Publication) -> _Publication:
        """The high layer for a camera on the subscriber's large tile, unless its path is
        congested; the low layer for the others."""
        low = self._low_layer(publication)
        if low is None:
            return publication
        if publication.participant not in self._staged(peer):
            return low
        return low if time.monotonic() < peer.constrained_until else publication

    def _follow_bandwidth(self, peer: _Peer, now: float) -> None:
        """Fall back to the low layer on the large tile while the subscriber's path is congested.

        Congested: its browser's recent estimate fell, below what its video slots carry now (their
        layers' measured bitrates), and stayed so for `CONGESTED_FOR`. No estimate (none yet, or
        an old one) says nothing.
        """
        if now < peer.constrained_until:
            return
        carried = sum(
            slot.layer.stats.bitrate
            for slot in peer.slots.values()
            if slot.kind == "video" and slot.layer is not None
        )
        estimate = peer.estimate if now - peer.estimate_at <= ESTIMATE_STALE else None
        if estimate is None or not peer.estimate_falling or estimate >= carried * CONGESTED_BELOW:
            peer.congested_since = None
            return
        if peer.congested_since is None:
            peer.congested_since = now
        if now - peer.congested_since < CONGESTED_FOR:
            return
        peer.congested_since = None
        # A fall soon after a try means the path still cannot carry the high layer.
        if now - peer.last_try < 60.0:
            peer.retry_after = min(peer.retry_after * 2, RETRY_AFTER_MAX)
        else:
            peer.retry_after = RETRY_AFTER
        peer.constrained_until = now + peer.retry_after
        peer.last_try = peer.constrained_until
        # What fell before the fall-back says nothing about the try after it.
        peer.estimate_peak = estimate
        peer.estimate_falling = False

    def _choose_layers(self) -> None:
        """Move every camera slot to the layer it should carry (at the new layer's keyframe)."""
        now = time.monotonic()
        for peer in self._peers.values():
            if peer.ended:
                continue
            self._follow_bandwidth(peer, now)
            for slot in peer.slots.values():
                if slot.carries is None or slot.kind != "video":
                    continue
                wanted = self._wanted_layer(peer, slot.carries)
                if wanted is (slot.switching_to or slot.layer):
                    continue
                if slot.switching_to is not None:
                    slot.switching_to.switch_at_next_keyframe(slot, waits=False)
                    slot.switching_to = None
                if wanted is slot.layer:
                    continue
                if slot.layer is None or slot.layer.tap is None or not slot.output.ready:
                    # Nothing to keep showing meanwhile: take the new layer from its keyframe.
                    self._enter_layer(slot, wanted)
                    continue
                slot.switching_to = wanted
                wanted.switch_at_next_keyframe(slot)
                self._request_keyframe(wanted)

    def _switch_at_keyframe(self, layer: _Publication) -> None:
        """`layer`'s keyframe begins: the slots waiting for it leave their old layer now."""
        for slot in layer.switching:
            if slot.layer is not None:
                slot.layer.fanout.remove(slot.output.slot)
            slot.switching_to = None
            slot.layer = layer
            slot.output.start_source()
            layer.fanout.append(slot.output.slot)
        layer.switching.clear()
        layer.switch_at_next_keyframe()

    def _on_estimate(self, peer: _Peer, bitrate: int, ssrcs: Sequence[int]) -> None:
        """A REMB from the participant's browser, naming `ssrcs` (each slot's sender hears it)."""
        named = set(ssrcs)
        # A browser's REMB names every video stream it receives (those with abs-send-time): it is
        # the whole downlink's estimate. One naming fewer is not (aiortc's receivers send one per
        # stream).
        if any(
            slot.kind == "video" and slot.layer is not None and slot.output.ssrc not in named
            for slot in peer.slots.values()
        ):
            return
        peer.estimate_at = time.monotonic()
        if bitrate == peer.estimate:
            return
        # Against the highest since the last fall-back: a slow slide is a fall too.
        peer.estimate_peak = max(peer.estimate_peak, bitrate)
        peer.estimate_falling = bitrate < peer.estimate_peak * FALLING_BELOW
        peer.estimate = bitrate

    async def _measure_layers(self) -> None:
        """Measure every stream's bitrate, and choose layers again with what was learnt."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(LAYER_INTERVAL)
            now = time.monotonic()
            elapsed, last = now - last, now
            for publication in self._publications.values():
                octets = publication.stream.take_octets()
                rate = octets * 8 / elapsed
                publication.silent = octets == 0
                # Smoothed over ~2 s: a keyframe is a burst, not the stream's rate.
                publication.stats.bitrate += (rate - publication.stats.bitrate) * 0.25
            self._choose_layers()

    # Media

    def _on_slot_started(self, slot: _Slot, parameters: RTCRtpSendParameters) -> None:
        """A subscriber's sender started: its slot can send, from a keyframe for video."""
        if slot.output.configure(parameters) and slot.layer is not None:
            # Not rate-limited: the keyframe asked for when the slot was attached went by before
            # it could send, and a joiner would otherwise wait out the interval for its first
            # frame. It happens once per slot.
            self._request_keyframe(slot.layer, at_once=True)

    async def _follow_speakers(self) -> None:
        """Pick the speakers a few times a second; a change reselects everyone's sources."""
        while True:
            await asyncio.sleep(SPEAKER_INTERVAL)
            for publication in self._publications.values():
                voice = publication.stream.voice() if publication.stream.live else None
                if voice is not None and publication.kind == "audio":
                    self._speakers.heard(publication.participant, *voice)
            if self._speakers.update(time.monotonic()):
                self._rebalance()
                self._on_speakers(self._speakers.speakers)

    def _on_subscriber_keyframe_request(self, peer: _Peer, mid: str) -> None:
        slot = peer.slots.get(mid)
        if slot is None or slot.layer is None:
            return
        slot.layer.stats.subscriber_keyframe_requests += 1
        self._request_keyframe(slot.layer)

    def _request_keyframe(self, publication: _Publication, *, at_once: bool = False) -> None:
        """Ask the publisher for a keyframe, at most once per interval (later ones coalesce),
        or `at_once` for a slot that has just started."""
        if publication.kind != "video":
            return
        if at_once:
            self._spawn(self._send_keyframe_request(publication, 0.0, pending=False))
            return
        if publication.keyframe_request_pending:
            return
        wait = publication.last_keyframe_request + KEYFRAME_REQUEST_INTERVAL - time.monotonic()
        publication.keyframe_request_pending = True
        self._spawn(self._send_keyframe_request(publication, max(wait, 0.0)))

    async def _send_keyframe_request(
        self, publication: _Publication, delay: float, *, pending: bool = True
    ) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            publication.last_keyframe_request = time.monotonic()
            if publication.tap is not None and await publication.tap.request_keyframe():
                publication.stats.keyframe_requests_sent += 1
        finally:
            if pending:
                publication.keyframe_request_pending = False

    # Ending

    async def remove(self, participant: str) -> None:
        """Close the participant's peer connection and free their sources' slots everywhere."""
        peer = self._peers.pop(participant, None)
        self._forwarding = {key for key in self._forwarding if key[0] != participant}
        for source in list(SOURCE_KINDS):
            self._publications.pop((participant, source), None)
        self._slots_wanted_sent.pop(participant, None)
        was_speaking = participant in self._speakers.speakers
        self._speakers.forget(participant)
        if peer is not None:
            await self._end_peer(peer, "closed")
        self._rebalance()
        if was_speaking and not self._closed:
            self._on_speakers(self._speakers.speakers)

    async def close(self) -> None:
        """Close every peer connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for participant in list(self._peers):
            await self.remove(participant)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _end_peer(self, peer: _Peer, state: PeerState | None) -> None:
        """Close the peer's connection once; report `state` for it unless None."""
        pc = peer.pc
        if pc is None or peer.ended:
            return
        peer.ended = True
        for source in SOURCE_KINDS:
            publication = self._publications.get((peer.participant, source))
            if publication is not None:
                publication.tap = None
                publication.stream.live = False
        for slot in peer.slots.values():
            self._detach(slot)
            slot.output.close()
            slot.track.stop()
        if state is not None:
            self._on_peer_state(peer.participant, state)
        with contextlib.suppress(Exception):
            # Shielded: aiortc's close may be under way in a task of its own (the remote end went),
            # and later callers wait on its future. Cancelling this wait (the forwarder closing)
            # would cancel that future, and aiortc's close would fail to set it.
            await asyncio.shield(pc.close())
        self._rebalance()

    def stats(self) -> ForwardingStats:
        """Counters for tests and benchmarks (copies: later traffic does not change them)."""
        return ForwardingStats(
            sources={
                key: _source_stats(publication) for key, publication in self._publications.items()
            },
            slots={
                (peer.participant, mid): slot.output.stats
                for peer in self._peers.values()
                for mid, slot in peer.slots.items()
            },
            layers={
                (peer.participant, mid): slot.layer.source
                for peer in self._peers.values()
                for mid, slot in peer.slots.items()
                if slot.layer is not None
            },
        )

    def _spawn(self, coroutine: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _source_stats(publication: _Publication) -> SourceStats:
    keyframes, frames, forwarded = publication.stream.counters()
    return SourceStats(
        **{
            **vars(publication.stats),
            "keyframes_received": keyframes,
            "frames_received": frames,
            "frames_forwarded": forwarded,
        }
    )


def _main_source(source: OfferSource) -> Source | None:
    """The source an offer names, or None for a low layer."""
    return None if source in LAYER_OF else cast(Source, source)


def _pinned_codecs(kind: Kind) -> list[RTCRtpCodecCapability]:
    wanted = {"audio": ("audio/opus",), "video": ("video/vp8", "video/rtx")}[kind]
    return [
        codec
        for codec in RTCRtpSender.getCapabilities(kind).codecs
        if codec.mimeType.lower() in wanted
    ]
