"""The relay process of a relay benchmark: a lesson's relay (or two), pinned to its own core.

`main()` runs in a process of its own and answers the load generator over a `Channel`:
`negotiate` (an offer, answered), `forward` (set_forwarding), `select` (last-N on and the pinned
teachers, forwarding relay only), `tracks` (which publisher each subscriber's receive slot
carries, so the generator can time frames end to end), `layers` (which simulcast layer each slot
carries and what each subscriber is forwarded, kbit/s), `counters` (RTP packets sent to
subscribers so far, resident memory, the forwarder's counters) and `close`. The main lesson's
forwarder selects per subscriber unless the scenario says not (`selective`, relay-full).
Two relays speak that protocol: `ForwardingRelay` is Homeroom's `LessonForwarder`;
`TranscodingRelay` is the baseline, aiortc's stock `MediaRelay` (decode once, encode once per
subscriber), offered and answered the same way. `negotiate` and `forward` may name a `lesson`
other than the main one: the forwarding relay then serves it from another `LessonForwarder` on
the same event loop, as a school's relay serves its classes (its packets are counted apart,
`other_packets_sent`). `pace` switches the relay's video pacer on (its default budget) or off.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import os
import shutil
import signal
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any, Literal, Protocol, TypedDict

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import SessionDescription

from media_relay import _fanout, pacing, wakeups
from media_relay.forwarding import LessonForwarder, PeerState, SlotTrack, Source

from .channel import Channel

RelayMode = Literal["forward", "transcode"]
TrackMap = dict[str, tuple[str, str] | None]
MAIN_LESSON = "main"


class Layers(TypedDict):
    """What the relay forwards now: each slot's layer, each subscriber's kbit/s of payload."""

    slots: dict[str, dict[str, str]]
    """Participant -> mid -> the stream in the slot (`mic`, `camera`, `camera-low`, `screen`)."""
    kbps: dict[str, float]
    """Participant -> the measured bitrates of the streams in its slots, summed."""


class Relay(Protocol):
    tracks: dict[str, TrackMap]

    async def negotiate(self, participant: str, sdp: str, sources: Mapping[str, Source]) -> str: ...
    def forward(self, participant: str, source: Source, on: bool) -> None: ...
    def peer_connections(self) -> list[RTCPeerConnection]: ...
    def counters(self) -> dict[str, int]: ...
    def layers(self) -> Layers: ...
    async def close(self) -> None: ...


class ForwardingRelay:
    """Homeroom's relay: a `LessonForwarder`, its callbacks recorded."""

    def __init__(self, *, selective: bool = True) -> None:
        self.tracks: dict[str, TrackMap] = {}
        self.events: Counter[str] = Counter()
        self.forwarder = LessonForwarder(
            on_peer_state=self._on_peer_state,
            on_tracks=self._on_tracks,
            on_slots_wanted=self._on_slots_wanted,
            on_speakers=self._on_speakers,
            selective=selective,
        )

    def _on_speakers(self, _speakers: Sequence[str]) -> None:
        self.events["speaker_changes"] += 1

    def select(self, last_n: int, pinned: Sequence[str]) -> None:
        self.forwarder.set_selection(last_n=last_n, pinned=pinned)

    def _on_peer_state(self, _participant: str, state: PeerState) -> None:
        self.events[f"peer_{state}"] += 1

    def _on_tracks(self, participant: str, mids: Mapping[str, SlotTrack | None]) -> None:
        self.tracks[participant] = {
            mid: None if track is None else (track.participant, track.source)
            for mid, track in mids.items()
        }

    def _on_slots_wanted(self, _participant: str, _audio: int, _video: int) -> None:
        self.events["slots_wanted"] += 1

    async def negotiate(self, participant: str, sdp: str, sources: Mapping[str, Source]) -> str:
        return await self.forwarder.negotiate(participant, sdp, sources)

    def forward(self, participant: str, source: Source, on: bool) -> None:
        self.forwarder.set_forwarding(participant, source, on)

    def peer_connections(self) -> list[RTCPeerConnection]:
        # The forwarder has no public list of its peer connections; reading one private attribute
        # here keeps the benchmark's packet count out of the relay's hot path.
        return [peer.pc for peer in self.forwarder._peers.values() if peer.pc is not None]

    def counters(self) -> dict[str, int]:
        stats = self.forwarder.stats()
        return {
            **self.events,
            "frames_received": sum(s.frames_received for s in stats.sources.values()),
            "frames_forwarded": sum(s.frames_forwarded for s in stats.sources.values()),
            "keyframe_requests_sent": sum(s.keyframe_requests_sent for s in stats.sources.values()),
            "subscriber_keyframe_requests": sum(
                s.subscriber_keyframe_requests for s in stats.sources.values()
            ),
            "slot_frames_sent": sum(s.frames_sent for s in stats.slots.values()),
            "slot_frames_dropped": sum(s.frames_dropped for s in stats.slots.values()),
            "slot_retransmissions_sent": sum(s.retransmissions_sent for s in stats.slots.values()),
            "slot_send_errors": sum(s.send_errors for s in stats.slots.values()),
        }

    def layers(self) -> Layers:
        stats = self.forwarder.stats()
        slots: dict[str, dict[str, str]] = {}
        kbps: defaultdict[str, float] = defaultdict(float)
        for (participant, mid), layer in stats.layers.items():
            slots.setdefault(participant, {})[mid] = layer
            carried = self.tracks.get(participant, {}).get(mid)
            source = stats.sources.get((carried[0], layer)) if carried else None
            kbps[participant] += source.bitrate / 1000 if source else 0.0
        return {"slots": slots, "kbps": {name: round(value, 1) for name, value in kbps.items()}}

    async def close(self) -> None:
        await self.forwarder.close()


class TranscodingRelay:
    """The baseline: each publisher track decoded once, re-encoded by every subscriber's sender.

    A subscriber's receive slots are filled, in order, with the publisher tracks of their kind
    that exist when it offers (so publishers join first). `MediaRelay.subscribe(buffered=False)`
    hands a slow encoder the latest frame rather than an ever longer queue.
    """

    def __init__(self) -> None:
        self.tracks: dict[str, TrackMap] = {}
        self._relay = MediaRelay()
        self._published: list[tuple[str, Source, MediaStreamTrack]] = []
        self._forwarding: set[tuple[str, Source]] = set()
        self._pcs: dict[str, RTCPeerConnection] = {}

    async def negotiate(self, participant: str, sdp: str, sources: Mapping[str, Source]) -> str:
        pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self._pcs[participant] = pc
        offered: dict[str, Source] = {}
        slot_tracks: TrackMap = {}
        free = [p for p in self._published if (p[0], p[1]) in self._forwarding]
        for media in SessionDescription.parse(sdp).media:
            mid = media.rtp.muxId or ""
            source = sources.get(mid)
            if source is not None and media.direction == "sendonly":
                transceiver = pc.addTransceiver(media.kind, direction="recvonly")
                offered[mid] = source
            elif media.direction == "recvonly" and (
                carried := next((p for p in free if _kind(p[1]) == media.kind), None)
            ):
                free.remove(carried)
                track = self._relay.subscribe(carried[2], buffered=False)
                transceiver = pc.addTransceiver(track, direction="sendonly")
                slot_tracks[mid] = (carried[0], carried[1])
            else:
                transceiver = pc.addTransceiver(media.kind, direction="inactive")
                slot_tracks[mid] = None
            transceiver.setCodecPreferences(_pinned_codecs(media.kind))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            mid = next(t.mid for t in pc.getTransceivers() if t.receiver.track is track)
            if mid in offered:
                self._published.append((participant, offered[mid], track))

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        self.tracks[participant] = slot_tracks
        return str(pc.localDescription.sdp)

    def forward(self, participant: str, source: Source, on: bool) -> None:
        if on:
            self._forwarding.add((participant, source))
        else:
            self._forwarding.discard((participant, source))

    def peer_connections(self) -> list[RTCPeerConnection]:
        return list(self._pcs.values())

    def counters(self) -> dict[str, int]:
        return {}

    def layers(self) -> Layers:
        # Every slot is re-encoded from the one stream each publisher sends: no layers.
        return {"slots": {}, "kbps": {}}

    async def close(self) -> None:
        for pc in self._pcs.values():
            with contextlib.suppress(Exception):
                await pc.close()


def _kind(source: Source) -> str:
    return "audio" if source == "mic" else "video"


def _pinned_codecs(kind: str) -> list[RTCRtpCodecCapability]:
    wanted = ("audio/opus",) if kind == "audio" else ("video/vp8", "video/rtx")
    return [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower() in wanted]


async def _packets_sent(relay: Relay) -> int:
    total = 0
    for pc in relay.peer_connections():
        for sender in pc.getSenders():
            if sender.track is None:
                continue
            with contextlib.suppress(Exception):
                report = await sender.getStats()
                total += sum(s.packetsSent for s in report.values() if s.type == "outbound-rtp")
    return total


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process, in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def _serve(conn: Connection, mode: RelayMode, selective: bool) -> None:
    relay: Relay = ForwardingRelay(selective=selective) if mode == "forward" else TranscodingRelay()
    lessons: dict[str, Relay] = {MAIN_LESSON: relay}
    done = asyncio.Event()

    def lesson(args: dict[str, Any]) -> Relay:
        name = args.get("lesson", MAIN_LESSON)
        if name not in lessons:
            if mode != "forward":
                raise ValueError("only the forwarding relay serves a second lesson")
            lessons[name] = ForwardingRelay()
        return lessons[name]

    async def handle(op: str, args: dict[str, Any]) -> Any:
        if op == "negotiate":
            return await lesson(args).negotiate(args["participant"], args["sdp"], args["sources"])
        if op == "forward":
            lesson(args).forward(args["participant"], args["source"], args["on"])
            return None
        if op == "select":
            if not isinstance(relay, ForwardingRelay):
                raise ValueError("only the forwarding relay selects")
            relay.select(args["last_n"], args.get("pinned", ()))
            return None
        if op == "pace":
            pacing.configure(rate_bits_per_second=pacing.RATE_BITS_PER_SECOND if args["on"] else 0)
            return None
        if op == "gso":
            _fanout.use_gso(args["on"])
            return None
        if op == "sends":
            return _fanout.send_counters()
        if op == "tracks":
            return {name: track for r in lessons.values() for name, track in r.tracks.items()}
        if op == "layers":
            return relay.layers()
        if op == "counters":
            others = [r for name, r in lessons.items() if name != MAIN_LESSON]
            pacer = pacing.counters()
            datagrams, sends, gso_sends, gso_refused = _fanout.send_counters()
            return {
                "packets_sent": await _packets_sent(relay),
                "rss_mb": rss_mb(),
                **relay.counters(),
                "other_packets_sent": sum([await _packets_sent(r) for r in others]),
                "pacer_queued": pacer.queued,
                "pacer_overflow_dropped": pacer.overflow_dropped,
                "pacer_stopped_dropped": pacer.stopped_dropped,
                # The compiled loop's datagrams and the system calls that sent them (UDP GSO
                # sends carry several), every lesson's.
                "socket_datagrams_sent": datagrams,
                "socket_send_calls": sends,
                "gso_sends": gso_sends,
                "gso_refused": gso_refused,
            }
        if op == "close":
            for served in lessons.values():
                await served.close()
            done.set()
            return None
        raise ValueError(f"unknown request {op!r}")

    channel = Channel(conn)
    channel.serve(handle)
    closed = asyncio.ensure_future(channel.closed.wait())
    finished = asyncio.ensure_future(done.wait())
    await asyncio.wait({closed, finished}, return_when=asyncio.FIRST_COMPLETED)
    closed.cancel()
    finished.cancel()
    for served in lessons.values():
        await served.close()
    # Let the reply to `close` leave before the process ends.
    await asyncio.sleep(0.1)


def read_hold_ms() -> float:
    """The relay's read hold (`media_relay.wakeups`) in ms: HOMEROOM_RELAY_READ_HOLD_MS, as in
    production (0: off, for A/B runs), or the relay's default."""
    return float(os.environ.get("HOMEROOM_RELAY_READ_HOLD_MS", wakeups.HOLD_SECONDS * 1000))


def main(conn: Connection, mode: RelayMode, core: int, selective: bool = True) -> None:
    """Entry point of the relay process: pin it to `core`, serve until told to close
    (`selective`: whether the main lesson's forwarder selects what each subscriber receives).

    With HOMEROOM_BENCH_RELAY_PROFILE=FILE the relay runs under cProfile and saves its profile
    there (cProfile's overhead inflates the CPU figures of that run). With
    HOMEROOM_BENCH_RELAY_PYSPY=FILE, py-spy (on PATH, or at HOMEROOM_BENCH_PYSPY_BIN) samples the
    relay from another core without pausing it and writes raw stacks (flamegraph input) there,
    HOMEROOM_BENCH_PYSPY_RATE samples a second (default 200).
    """
    os.sched_setaffinity(0, {core})
    wakeups.configure(hold_seconds=read_hold_ms() / 1000)
    profile_to = os.environ.get("HOMEROOM_BENCH_RELAY_PROFILE")
    sample_to = os.environ.get("HOMEROOM_BENCH_RELAY_PYSPY")
    if sample_to:
        with _sampled_by_py_spy(sample_to, core):
            asyncio.run(_serve(conn, mode, selective))
        return
    if not profile_to:
        asyncio.run(_serve(conn, mode, selective))
        return
    profiler = cProfile.Profile()
    profiler.runcall(asyncio.run, _serve(conn, mode, selective))
    profiler.dump_stats(profile_to)


@contextlib.contextmanager
def _sampled_by_py_spy(output: str, core: int) -> Iterator[None]:
    binary = os.environ.get("HOMEROOM_BENCH_PYSPY_BIN") or shutil.which("py-spy")
    if binary is None:
        raise RuntimeError("HOMEROOM_BENCH_RELAY_PYSPY is set but py-spy is not installed")
    command = [
        binary,
        "record",
        "--pid",
        str(os.getpid()),
        "--nonblocking",
        "--rate",
        os.environ.get("HOMEROOM_BENCH_PYSPY_RATE", "200"),
    ]
    sampler = subprocess.Popen(
        [*command, "--format", "raw", "--output", output], stdout=subprocess.DEVNULL
    )
    # Off the relay's core, so that sampling does not take the relay's CPU.
    os.sched_setaffinity(sampler.pid, (os.sched_getaffinity(sampler.pid) - {core}) or {core})
    try:
        yield
    finally:
        sampler.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        sampler.wait(30)
