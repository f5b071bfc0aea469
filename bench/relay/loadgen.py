"""The load generator process of a relay benchmark: aiortc publishers and subscribers, one core.

Publishers send the pre-encoded clip (`bench.relay.media`); subscribers offer receive slots as the
class page does. Most slots only count: their receiver's RTP handler is replaced by a meter, so
packets are decrypted (SRTP) and parsed but never reassembled or decoded. The first audio and
video slot of the first two participants that subscribe are real receivers (the meter, then
aiortc's own handling and a decoder), so NACK, PLI and REMB reach the relay as from a browser.

Latency needs no mark in the media: each publisher remembers when each clip frame went to its
sender, by the frame's last bytes; a slot's meter looks up the last bytes of each frame's final
RTP packet (marker bit) in its publisher's ledger on arrival. Both ends share this process's
monotonic clock. Frames a transcoding relay re-encodes match nothing: no latency for it.

With `simulcast` (`relay-gallery`), each publisher also sends the low clip on a third sending
transceiver, named `camera-low` in its offer's sources, and answers keyframe requests on it as on
the camera. A camera slot carries either layer, so its meter looks a frame up in both of its
publisher's ledgers (camera and camera-low: each layer's frames are its own). A slot on the low
layer delivers 15 fps by design: `delivered_fps` is the high-layer slots' rate and
`delivered_fps_low_layer` the low-layer slots' (a slot's layer is the relay's at both ends of the
window), and `simulcast` says how many slots carry each layer and what a subscriber is forwarded.

With last-N (`relay-gallery`), publishers put an RFC 6464 level on their audio packets, as a
browser does: -20 dBov for the few who speak, -127 (silence) for the others; the speaking move on
every few seconds, and the relay's selection (which slot carries whom) follows. Latency is not
timed from each move until the slots are mapped to their new publishers again.

With `other_class` (`keyframe-storm`), a second lesson runs in the same relay process: a teacher
(audio+video) to two pupils, never stormed. Its audio latency is reported apart, in the half
second after each storm and outside it (`other_class_audio_*`): what one class's keyframe burst
costs another class's audio. Every other figure is the first lesson's. With `alternate_pacing`
the relay paces video at even storms only, and the storms' figures are also given apart for the
paced and the unpaced ones (`pacing_compared`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpsender import RTCEncodedFrame, RTCRtpSender
from aiortc.rtp import RtpPacket

from media_relay.aiortc_internals import hook_keyframe_requests
from media_relay.selection import TOP_AUDIO

from .channel import Channel
from .media import KEY_BYTES, LOW, ClipTrack, EncodedClip
from .relay_server import rss_mb
from .scenarios import GENERATOR_CORE, GSO_PHASE_SECONDS, RELAY_CORE, AddressFamily, Scenario

REAL_RECEIVERS = 2
CONNECT_TIMEOUT = 60.0
# Media must reach every slot before the window opens; then a little more for the jitter to settle.
FIRST_MEDIA_TIMEOUT = 20.0
SETTLE = 2.0
# A generator whose core is busier than this cannot be trusted to send and receive on time.
SATURATED_PCT = 90
# Of the machine's UDP datagrams in the window, the most that may go by the other address family
# before the run is reported invalid (its media did not all go by the family asked for).
OTHER_FAMILY_SHARE = 0.01
# Frames sent within this long after a keyframe storm count as the storm's.
STORM_SPAN = 1.0
# Audio levels (dBov) of a speaking and a silent publisher; a move of the speaking is timed again
# once the relay has followed it (it picks speakers every 0.25 s, smoothing over ~0.2 s).
SPEAKING_DBOV, SILENT_DBOV = -20, -127
REMAP_AFTER = 1.5
# The second lesson's audio sent within this long after a storm counts as sent during it: the
# storm's keyframes leave the relay within a few hundred milliseconds.
OTHER_CLASS_STORM_SPAN = 0.5
OTHER_CLASS = "other"
OTHER_CLASS_PUPILS = 2
# The publisher that is the teacher, in a scenario with one.
TEACHER = "publisher-0"

Ledger = dict[bytes, deque[float]]
"""A publisher track's send times of each clip frame, by the frame's last bytes."""


class SlotMeter:
    """Counts one receive slot's RTP packets and frames and times its frames end to end."""

    def __init__(self, kind: str, measuring: Callable[[], bool]) -> None:
        self.kind = kind
        self.ledgers: tuple[Ledger, ...] = ()
        """Of the publisher tracks the slot may carry (both layers of a camera); () unknown."""
        self.media_ssrc: int | None = None
        self.packets = 0
        self.other_packets = 0  # retransmissions (RTX) and anything not on the media SSRC
        self.frames = 0
        self.highest_seq = 0  # extended sequence number of the media SSRC
        self.latencies: list[tuple[float, float]] = []  # (sent at, ms), while measuring
        self.unmatched = 0
        self._measuring = measuring

    def on_packet(self, packet: RtpPacket) -> None:
        now = time.monotonic()
        if self.media_ssrc is None:
            self.media_ssrc = packet.ssrc
            self.highest_seq = packet.sequence_number
        elif packet.ssrc != self.media_ssrc:
            self.other_packets += 1
            return
        self.packets += 1
        step = (packet.sequence_number - self.highest_seq) & 0xFFFF
        if step < 0x8000:
            self.highest_seq += step
        if self.kind == "video" and not packet.marker:
            return
        self.frames += 1
        if not self.ledgers or not self._measuring():
            return
        key = packet.payload[-KEY_BYTES:]
        sends = next((found for ledger in self.ledgers if (found := ledger.get(key))), None)
        sent = next((t for t in reversed(sends) if t <= now), None) if sends else None
        if sent is None:
            self.unmatched += 1
        else:
            self.latencies.append((sent, (now - sent) * 1000))

    def snapshot(self) -> tuple[int, int, int]:
        return self.packets, self.frames, self.highest_seq


@dataclass(eq=False)
class Participant:
    """One synthetic participant: publishes the clip and/or offers receive slots."""

    name: str
    publishes: bool
    audio_slots: int
    video_slots: int
    real_receiver: bool
    measuring: Callable[[], bool]
    clip: EncodedClip
    lesson: str = "main"
    simulcast: bool = False
    address_family: AddressFamily = "ipv4"
    pc: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(
            RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
    )

    def __post_init__(self) -> None:
        self.ledgers: dict[str, Ledger] = {
            "mic": defaultdict(_recent),
            "camera": defaultdict(_recent),
            "camera-low": defaultdict(_recent),
        }
        self.meters: dict[RTCRtpTransceiver, SlotMeter] = {}
        self.real_slots: set[RTCRtpTransceiver] = set()  # decoded as well as counted
        self.sources: dict[RTCRtpTransceiver, str] = {}
        self.camera: ClipTrack | None = None
        self.camera_low: ClipTrack | None = None
        self.mic: ClipTrack | None = None
        self.level = SILENT_DBOV
        self.decoded_frames = 0
        self._tasks: set[asyncio.Task[None]] = set()
        if self.publishes:
            start = random.randrange(len(self.clip.video))  # publishers' keyframes fall apart
            self.mic = mic = ClipTrack("audio", self.clip.audio, self._ledger_writer("mic"))
            self.camera = ClipTrack(
                "video", self.clip.video, self._ledger_writer("camera"), start=start
            )
            microphone = self.pc.addTransceiver(mic, direction="sendonly")
            self.sources[microphone] = "mic"
            _send_levels(microphone.sender, self)
            camera = self.pc.addTransceiver(self.camera, direction="sendonly")
            self.sources[camera] = "camera"
            hook_keyframe_requests(camera.sender, self.camera.request_keyframe)
            if self.simulcast:
                self._send_low_layer(start)
        first = {"audio": True, "video": True}
        for kind, count in (("audio", self.audio_slots), ("video", self.video_slots)):
            for _ in range(count):
                transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                meter = SlotMeter(kind, self.measuring)
                self.meters[transceiver] = meter
                if self.real_receiver and first[kind]:
                    self.real_slots.add(transceiver)
                _meter_receiver(transceiver.receiver, meter, chain=transceiver in self.real_slots)
                first[kind] = False
        self.pc.on("track", self._on_track)

    def _send_low_layer(self, start: int) -> None:
        """The camera's low layer, on a transceiver of its own, as the class page sends it."""
        self.camera_low = ClipTrack(
            "video",
            self.clip.low_video,
            self._ledger_writer("camera-low"),
            start=start * len(self.clip.low_video) // len(self.clip.video),
            fps=LOW.fps,
        )
        low = self.pc.addTransceiver(self.camera_low, direction="sendonly")
        self.sources[low] = "camera-low"
        hook_keyframe_requests(low.sender, self.camera_low.request_keyframe)

    def ledgers_of(self, source: str) -> tuple[Ledger, ...]:
        """The ledgers of the tracks a slot carrying `source` may receive (a camera: its layers)."""
        if source == "camera":
            return self.ledgers["camera"], self.ledgers["camera-low"]
        return (self.ledgers[source],)

    def _ledger_writer(self, source: str) -> Callable[[bytes, float], None]:
        ledger = self.ledgers[source]

        def write(key: bytes, sent: float) -> None:
            ledger[key].append(sent)

        return write

    def _on_track(self, track: MediaStreamTrack) -> None:
        if any(t.receiver.track is track for t in self.real_slots):
            task = asyncio.get_running_loop().create_task(self._decode(track))
            self._tasks.add(task)

    async def _decode(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if track.kind == "video" and frame is not None:
                    self.decoded_frames += 1

    async def join(self, call: Callable[..., Awaitable[Any]]) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sources = {t.mid: source for t, source in self.sources.items() if t.mid is not None}
        answer = await call(
            "negotiate",
            participant=self.name,
            sdp=only_candidates_of(self.pc.localDescription.sdp, self.address_family),
            sources=sources,
            lesson=self.lesson,
        )
        answer = only_candidates_of(answer, self.address_family)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    def meter_for(self, mid: str) -> SlotMeter | None:
        return next((m for t, m in self.meters.items() if t.mid == mid), None)

    async def report_picture_loss(self) -> None:
        """Send a PLI on every video slot, as a joining browser's decoder would."""
        for transceiver, meter in self.meters.items():
            if meter.kind == "video" and meter.media_ssrc is not None:
                await transceiver.receiver._send_rtcp_pli(meter.media_ssrc)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()


def _send_levels(sender: RTCRtpSender, participant: Participant) -> None:
    """Put the participant's current level on each audio packet, as a browser's sender does.

    aiortc writes the RFC 6464 extension from `RTCEncodedFrame.audio_level`, which it computes only
    when it encodes; the clip is pre-encoded, so the level is set on each frame here (aiortc 1.16.0
    looks `_next_encoded_frame` up on the sender instance).
    """
    original = sender._next_encoded_frame

    async def next_frame(codec: Any) -> RTCEncodedFrame | None:
        frame = await original(codec)
        if frame is not None:
            frame.audio_level = participant.level
        return frame

    sender._next_encoded_frame = next_frame  # type: ignore[method-assign]


def _recent() -> deque[float]:
    return deque(maxlen=8)


def _meter_receiver(receiver: RTCRtpReceiver, meter: SlotMeter, *, chain: bool) -> None:
    """Route the receiver's RTP packets (after SRTP) to the meter; to aiortc too when `chain`.

    The DTLS transport looks `_handle_rtp_packet` up on the receiver instance, so an instance
    attribute replaces it (aiortc 1.16.0, as media_relay.aiortc_internals).
    """
    original = receiver._handle_rtp_packet

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        meter.on_packet(packet)
        if chain:
            await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]


def cpu_seconds(pid: int | str = "self") -> float:
    """User plus system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    return sum(user_and_system_seconds(pid))


def user_and_system_seconds(pid: int | str = "self") -> tuple[float, float]:
    """User and system CPU time of a process (all its threads), from /proc/<pid>/stat.

    System time is the kernel's work in the process's system calls, and on loopback also the
    receiving side of each datagram it sends (the kernel delivers it in the sender's context).
    """
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))], 1)


class Generator:
    """Runs one scenario against the relay at the other end of the channel."""

    def __init__(self, scenario: Scenario, clip: EncodedClip, channel: Channel) -> None:
        self.scenario = scenario
        self.channel = channel
        self.measuring = False
        self.storms: list[float] = []
        self.storms_paced: list[bool] = []
        self.participants: list[Participant] = []
        self._tasks: set[asyncio.Task[None]] = set()
        others = scenario.publishers - 1 if scenario.publishers_subscribe else 0
        audio_slots = video_slots = others
        if scenario.last_n is not None:
            audio_slots, video_slots = min(others, TOP_AUDIO), min(others, scenario.last_n)
        for index in range(scenario.publishers):
            self.participants.append(
                Participant(
                    name=f"publisher-{index}",
                    publishes=True,
                    audio_slots=audio_slots,
                    video_slots=video_slots,
                    real_receiver=scenario.publishers_subscribe and index < REAL_RECEIVERS,
                    measuring=self._is_measuring,
                    clip=clip,
                    simulcast=scenario.simulcast,
                    address_family=scenario.address_family,
                )
            )
        for index in range(scenario.subscribers):
            self.participants.append(
                Participant(
                    name=f"subscriber-{index}",
                    publishes=False,
                    audio_slots=scenario.publishers,
                    video_slots=scenario.publishers,
                    real_receiver=not scenario.publishers_subscribe and index < REAL_RECEIVERS,
                    measuring=self._is_measuring,
                    clip=clip,
                    address_family=scenario.address_family,
                )
            )
        self.other_class: list[Participant] = []
        if scenario.other_class:
            self.other_class = [
                Participant(
                    name=f"{OTHER_CLASS}-teacher" if teacher else f"{OTHER_CLASS}-pupil-{index}",
                    publishes=teacher,
                    audio_slots=0 if teacher else 1,
                    video_slots=0 if teacher else 1,
                    real_receiver=False,
                    measuring=self._is_measuring,
                    clip=clip,
                    lesson=OTHER_CLASS,
                    address_family=scenario.address_family,
                )
                for index, teacher in enumerate([True] + [False] * OTHER_CLASS_PUPILS)
            ]

    def _is_measuring(self) -> bool:
        return self.measuring

    @property
    def meters(self) -> list[SlotMeter]:
        """The first lesson's receive slots: every figure but `other_class_*` is theirs."""
        return [m for p in self.participants for m in p.meters.values()]

    @property
    def everyone(self) -> list[Participant]:
        return [*self.participants, *self.other_class]

    async def run(self, seconds: float, relay_pid: int) -> dict[str, Any]:
        call = self.channel.call
        publishers = [p for p in self.participants if p.publishes]
        if self.scenario.last_n is not None:
            pinned = [TEACHER] if self.scenario.teacher else []
            await call("select", last_n=self.scenario.last_n, pinned=pinned)
        if self.scenario.speakers:
            rotation = asyncio.get_running_loop().create_task(self._rotate_speakers(publishers))
            self._tasks.add(rotation)
        # Publishers first (the transcoding relay fills slots with tracks that exist), all at once.
        await asyncio.gather(*(p.join(call) for p in publishers))
        for publisher in publishers:
            await call("forward", participant=publisher.name, source="mic", on=True)
            await call("forward", participant=publisher.name, source="camera", on=True)
        await self._join_other_class()
        joined = time.monotonic()
        await asyncio.gather(*(p.join(call) for p in self.participants if not p.publishes))
        join_seconds = time.monotonic() - joined
        await self._wait(
            lambda: all(p.pc.connectionState == "connected" for p in self.everyone),
            CONNECT_TIMEOUT,
            "peer connections",
        )
        self._map_slots(await call("tracks"))
        started = await self._wait(
            lambda: all(m.frames for p in self.everyone for m in p.meters.values()),
            FIRST_MEDIA_TIMEOUT,
            "first media on every slot",
        )
        await asyncio.sleep(SETTLE)

        before = await self._mark(relay_pid)
        self.measuring = True
        gso_compared = None
        if self.scenario.storm_every:
            await self._storms(seconds)
        elif self.scenario.compare_gso:
            gso_compared = await self._compare_gso(seconds, relay_pid)
        else:
            await asyncio.sleep(seconds)
        self.measuring = False
        after = await self._mark(relay_pid)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        result = self._result(before, after)
        if gso_compared is not None:
            result["gso_compared"] = gso_compared
        result["conditions"].update(
            {"join_seconds": round(join_seconds, 2), "all_slots_had_media": started}
        )
        await asyncio.gather(*(p.close() for p in self.everyone), return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(call("close"), 10)
        return result

    async def _wait(self, condition: Callable[[], bool], within: float, what: str) -> bool:
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def _join_other_class(self) -> None:
        """The second lesson's teacher joins and is forwarded, then its pupils join."""
        call = self.channel.call
        for participant in self.other_class:
            await participant.join(call)
            if participant.publishes:
                for source in ("mic", "camera"):
                    await call(
                        "forward",
                        participant=participant.name,
                        source=source,
                        on=True,
                        lesson=OTHER_CLASS,
                    )

    def _map_slots(self, tracks: dict[str, dict[str, tuple[str, str] | None]]) -> None:
        by_name = {p.name: p for p in self.everyone}
        for name, mids in tracks.items():
            for mid, carried in mids.items():
                meter = by_name[name].meter_for(mid) if name in by_name else None
                if meter is not None and carried is not None and carried[0] in by_name:
                    meter.ledgers = by_name[carried[0]].ledgers_of(carried[1])

    async def _rotate_speakers(self, publishers: list[Participant]) -> None:
        """The next `speakers` publishers speak every `rotate_every` seconds; slots are remapped."""
        count = self.scenario.speakers
        interval = self.scenario.rotate_every or float("inf")
        first = 0
        while True:
            speaking = {(first + i) % len(publishers) for i in range(count)}
            for index, publisher in enumerate(publishers):
                publisher.level = SPEAKING_DBOV if index in speaking else SILENT_DBOV
            for meter in self.meters:
                meter.ledgers = ()
            await asyncio.sleep(REMAP_AFTER)
            self._map_slots(await self.channel.call("tracks"))
            await asyncio.sleep(max(interval - REMAP_AFTER, 0.0))
            first = (first + count) % len(publishers)

    async def _compare_gso(self, seconds: float, relay_pid: int) -> dict[str, Any]:
        """The window in phases with the relay's UDP GSO on and off, in the order on, off, off,
        on (a steady drift of the machine's load then weighs on both alike): the relay's CPU per
        datagram it sent on a socket, in each, and their ratio over each such quartet."""
        quartets = max(1, round(seconds / GSO_PHASE_SECONDS / 4))
        phases: dict[bool, list[tuple[float, float, int, int]]] = {True: [], False: []}
        for phase in range(4 * quartets):
            on = phase % 4 in (0, 3)
            await self.channel.call("gso", on=on)
            at, cpu, (datagrams, sends, _, _) = (
                time.monotonic(),
                cpu_seconds(relay_pid),
                await self.channel.call("sends"),
            )
            await asyncio.sleep(GSO_PHASE_SECONDS)
            end_datagrams, end_sends, _, _ = await self.channel.call("sends")
            phases[on].append(
                (
                    time.monotonic() - at,
                    cpu_seconds(relay_pid) - cpu,
                    end_datagrams - datagrams,
                    end_sends - sends,
                )
            )
        await self.channel.call("gso", on=True)

        def figures(measured: list[tuple[float, float, int, int]]) -> dict[str, Any]:
            wall, cpu, datagrams, sends = (sum(column) for column in zip(*measured, strict=True))
            return {
                "relay_cpu_pct_one_core": round(cpu / wall * 100, 2),
                "socket_datagrams_per_second": round(datagrams / wall),
                "us_cpu_per_socket_datagram": _ratio(cpu * 1e6, datagrams, 3),
                "datagrams_per_send": _ratio(datagrams, sends, 2),
            }

        key = "us_cpu_per_socket_datagram"
        ratios = []
        for quartet in range(quartets):
            us_on = figures(phases[True][2 * quartet : 2 * quartet + 2])[key]
            us_off = figures(phases[False][2 * quartet : 2 * quartet + 2])[key]
            if us_on and us_off:
                ratios.append(us_on / us_off)
        with_gso, without = figures(phases[True]), figures(phases[False])
        return {
            "on": with_gso,
            "off": without,
            "phase_seconds": GSO_PHASE_SECONDS,
            "quartets": quartets,
            # Below 1: a datagram cost the relay less CPU with GSO.
            "cpu_per_datagram_on_vs_off": _ratio(with_gso[key] or 0, without[key] or 0, 3),
            "cpu_per_datagram_on_vs_off_by_quartet": {
                "min": round(min(ratios), 3) if ratios else None,
                "median": round(statistics.median(ratios), 3) if ratios else None,
                "max": round(max(ratios), 3) if ratios else None,
            },
        }

    async def _storms(self, seconds: float) -> None:
        """Every publisher's keyframe at once and a PLI from every subscriber, every few seconds."""
        interval = self.scenario.storm_every or seconds
        ends = time.monotonic() + seconds
        await asyncio.sleep(min(interval / 2, seconds))
        while time.monotonic() < ends:
            if self.scenario.alternate_pacing:
                paced = len(self.storms) % 2 == 0
                await self.channel.call("pace", on=paced)
                self.storms_paced.append(paced)
            self.storms.append(time.monotonic())
            for participant in self.participants:
                if participant.camera is not None:
                    participant.camera.request_keyframe()
            await asyncio.gather(*(p.report_picture_loss() for p in self.participants))
            await asyncio.sleep(max(0.0, min(interval, ends - time.monotonic())))

    async def _mark(self, relay_pid: int) -> Mark:
        counters = await self.channel.call("counters")
        relay_user, relay_system = user_and_system_seconds(relay_pid)
        return Mark(
            at=time.monotonic(),
            relay_cpu=relay_user + relay_system,
            relay_system_cpu=relay_system,
            generator_cpu=cpu_seconds(),
            relay_wait=run_queue_seconds(relay_pid),
            generator_wait=run_queue_seconds(),
            cores=cores_busy(),
            udp_drops=udp_receive_drops(),
            udp_sent=udp_datagrams_sent(),
            relay=counters,
            meters=[m.snapshot() for m in self.meters],
            sent={
                kind: sum(t.frames_sent for p in self.participants if (t := getattr(p, track)))
                for kind, track in SENT_TRACKS
                if track != "camera_low" or self.scenario.simulcast
            },
            layers=await self.channel.call("layers"),
        )

    def _result(self, before: Mark, after: Mark) -> dict[str, Any]:
        wall = after.at - before.at
        relay_cpu = after.relay_cpu - before.relay_cpu
        forwarded = after.relay["packets_sent"] - before.relay["packets_sent"]
        conditions = self._conditions(before, after)
        reasons = []
        if conditions["generator_cpu_pct"] > SATURATED_PCT:
            reasons.append(f"generator process {conditions['generator_cpu_pct']:.0f}% of its core")
        if conditions["generator_core_busy_pct"] > SATURATED_PCT:
            reasons.append(f"generator core {conditions['generator_core_busy_pct']:.0f}% busy")
        sent = conditions["udp_datagrams_sent"]
        family = self.scenario.address_family
        other = sum(n for f, n in sent.items() if f != family)
        if other > OTHER_FAMILY_SHARE * sum(sent.values()):
            reasons.append(f"{other} datagrams went by another address family than {family}")
        delivery = self._delivery(before, after)
        if delivery.pop("silent_video_slots"):
            reasons.append("a video slot received nothing in the window")
        return {
            "forwarded_pps": round(forwarded / wall),
            "relay_cpu_pct_one_core": round(relay_cpu / wall * 100, 2),
            # The kernel's part of it: compare udp-fanout-floor, the kernel's cost of the same
            # datagrams with no relay work.
            "relay_system_cpu_pct_one_core": round(
                (after.relay_system_cpu - before.relay_system_cpu) / wall * 100, 2
            ),
            "us_cpu_per_forwarded_packet": _ratio(relay_cpu * 1e6, forwarded, 2),
            "forwarded_packets_per_cpu_second": _ratio(forwarded, relay_cpu, 0),
            **delivery,
            **self._latency(),
            **(
                {"simulcast": _layer_figures(after.layers)}
                if self.scenario.relay == "forward"
                else {}
            ),
            "relay_rss_mb": after.relay["rss_mb"],
            "valid": not reasons,
            "invalid_reasons": reasons,
            "relay_counters": {
                key: value - before.relay.get(key, 0)
                for key, value in after.relay.items()
                if key not in ("packets_sent", "rss_mb")
            },
            "conditions": conditions,
        }

    def _delivery(self, before: Mark, after: Mark) -> dict[str, Any]:
        """Frame rate per video slot, by layer, and RTP loss (by sequence numbers) over all slots.

        Without simulcast every video slot is a high-layer one. With it, a slot counts for the
        layer the relay says it carried at both ends of the window; one that changed layer (or
        carried nothing at one end) counts for neither, only in `layer_changed_video_slots`.
        """
        wall = after.at - before.at
        received = expected = silent = 0
        fps: dict[str, list[float]] = {"camera": [], "camera-low": []}
        changed = 0
        slots = [(p.name, t.mid, m) for p in self.participants for t, m in p.meters.items()]
        for (name, mid, meter), start, end in zip(slots, before.meters, after.meters, strict=True):
            received += end[0] - start[0]
            expected += end[2] - start[2]
            if meter.kind != "video":
                continue
            rate = (end[1] - start[1]) / wall
            silent += not rate
            layer = "camera"
            if self.scenario.simulcast:
                layer = before.layers["slots"].get(name, {}).get(mid)
                if layer != after.layers["slots"].get(name, {}).get(mid) or layer not in fps:
                    changed += 1
                    continue
            fps[layer].append(rate)
        high, low = fps["camera"], fps["camera-low"]
        figures: dict[str, Any] = {
            "delivered_fps": round(statistics.fmean(high), 2) if high else 0.0,
            "delivered_fps_min": round(min(high), 2) if high else 0.0,
            "loss_pct": _ratio(max(expected - received, 0) * 100, expected, 3),
            "silent_video_slots": silent,
        }
        if self.scenario.simulcast:
            figures.update(
                {
                    "delivered_fps_low_layer": round(statistics.fmean(low), 2) if low else 0.0,
                    "delivered_fps_low_layer_min": round(min(low), 2) if low else 0.0,
                    "layer_changed_video_slots": changed,
                }
            )
        return figures

    def _latency(self) -> dict[str, Any]:
        samples = [(m.kind, sent, ms) for m in self.meters for sent, ms in m.latencies]
        figures: dict[str, Any] = {
            "latency_p50_ms": _percentile([ms for _, _, ms in samples], 0.50),
            "latency_p99_ms": _percentile([ms for _, _, ms in samples], 0.99),
            "latency_samples": len(samples),
            "latency_unmatched": sum(m.unmatched for m in self.meters),
        }
        for kind in ("audio", "video"):
            values = [ms for k, _, ms in samples if k == kind]
            figures[f"latency_{kind}_p50_ms"] = _percentile(values, 0.50)
            figures[f"latency_{kind}_p99_ms"] = _percentile(values, 0.99)
        if self.scenario.storm_every:
            storm = [
                ms
                for _, sent, ms in samples
                if any(0 <= sent - at <= STORM_SPAN for at in self.storms)
            ]
            figures["storms"] = len(self.storms)
            figures["storm_latency_p50_ms"] = _percentile(storm, 0.50)
            figures["storm_latency_p99_ms"] = _percentile(storm, 0.99)
        if self.other_class:
            figures.update(self._other_class_latency())
        if self.scenario.alternate_pacing:
            figures["pacing_compared"] = self._pacing_compared(samples)
        return figures

    def _storm_at(self, sent: float, span: float) -> int | None:
        """The storm during which a frame was sent, if any."""
        return next((i for i, at in enumerate(self.storms) if 0 <= sent - at <= span), None)

    def _pacing_compared(self, samples: list[tuple[str, float, float]]) -> dict[str, Any]:
        """The storms' figures, for the storms the relay paced ("on") and the others ("off")."""
        main: dict[bool, list[float]] = {True: [], False: []}
        other: dict[bool, list[float]] = {True: [], False: []}
        for _, sent, ms in samples:
            if (storm := self._storm_at(sent, STORM_SPAN)) is not None:
                main[self.storms_paced[storm]].append(ms)
        for participant in self.other_class:
            for meter in participant.meters.values():
                if meter.kind != "audio":
                    continue
                for sent, ms in meter.latencies:
                    if (storm := self._storm_at(sent, OTHER_CLASS_STORM_SPAN)) is not None:
                        other[self.storms_paced[storm]].append(ms)
        return {
            "on" if paced else "off": {
                "storms": self.storms_paced.count(paced),
                "storm_latency_p50_ms": _percentile(main[paced], 0.50),
                "storm_latency_p99_ms": _percentile(main[paced], 0.99),
                "other_class_audio_storm_p50_ms": _percentile(other[paced], 0.50),
                "other_class_audio_storm_p90_ms": _percentile(other[paced], 0.90),
                "other_class_audio_storm_p99_ms": _percentile(other[paced], 0.99),
                "other_class_audio_storm_max_ms": round(max(other[paced]), 1)
                if other[paced]
                else None,
                "other_class_audio_storm_samples": len(other[paced]),
            }
            for paced in (True, False)
        }

    def _other_class_latency(self) -> dict[str, Any]:
        """The second lesson's audio latency, during the first lesson's storms and outside them."""
        storm: list[float] = []
        quiet: list[float] = []
        for participant in self.other_class:
            for meter in participant.meters.values():
                if meter.kind != "audio":
                    continue
                for sent, ms in meter.latencies:
                    during = any(0 <= sent - at <= OTHER_CLASS_STORM_SPAN for at in self.storms)
                    (storm if during else quiet).append(ms)
        return {
            "other_class_audio_p50_ms": _percentile(storm + quiet, 0.50),
            "other_class_audio_p99_ms": _percentile(storm + quiet, 0.99),
            "other_class_audio_storm_p50_ms": _percentile(storm, 0.50),
            "other_class_audio_storm_p90_ms": _percentile(storm, 0.90),
            "other_class_audio_storm_p99_ms": _percentile(storm, 0.99),
            "other_class_audio_storm_max_ms": round(max(storm), 1) if storm else None,
            "other_class_audio_quiet_p50_ms": _percentile(quiet, 0.50),
            "other_class_audio_quiet_p90_ms": _percentile(quiet, 0.90),
            "other_class_audio_quiet_p99_ms": _percentile(quiet, 0.99),
            "other_class_audio_samples": {"storm": len(storm), "quiet": len(quiet)},
        }

    def _conditions(self, before: Mark, after: Mark) -> dict[str, Any]:
        wall = after.at - before.at
        publishers = self.scenario.publishers
        sent = {k: (after.sent[k] - before.sent[k]) / wall / publishers for k in after.sent}
        frames_sent = sum(after.sent[k] - before.sent[k] for k in after.sent)
        relay_received = after.relay.get("frames_received", 0) - before.relay.get(
            "frames_received", 0
        )
        return {
            "participants": len(self.participants),
            "publishers": publishers,
            "receive_slots": len(self.meters),
            "real_receiver_slots": sum(len(p.real_slots) for p in self.participants),
            "seconds": round(wall, 2),
            "generator_cpu_pct": round(
                (after.generator_cpu - before.generator_cpu) / wall * 100, 1
            ),
            # Busy cores and time spent waiting for a core: other processes on the machine.
            "generator_core_busy_pct": _core_busy(before, after, GENERATOR_CORE),
            "relay_core_busy_pct": _core_busy(before, after, RELAY_CORE),
            "generator_waited_for_cpu_pct": round(
                (after.generator_wait - before.generator_wait) / wall * 100, 1
            ),
            "relay_waited_for_cpu_pct": round(
                (after.relay_wait - before.relay_wait) / wall * 100, 1
            ),
            "generator_rss_mb": rss_mb(),
            # Datagrams the kernel dropped for a full receive buffer, machine-wide: a receiver
            # (the generator's, or the relay's publisher sockets) that could not keep up.
            "udp_receive_buffer_drops": after.udp_drops - before.udp_drops,
            # Every UDP datagram sent on the machine, by address family: the run's media went by
            # `address_family` only (the few of the other are the machine's own traffic).
            "address_family": self.scenario.address_family,
            "udp_datagrams_sent": {
                family: after.udp_sent[family] - before.udp_sent[family]
                for family in after.udp_sent
            },
            "sent_fps_per_publisher": {k: round(v, 2) for k, v in sent.items()},
            # Frames the relay reassembled out of those sent (forwarding relay only).
            "relay_received_pct": _ratio(relay_received * 100, frames_sent, 2)
            if self.scenario.relay == "forward"
            else None,
            "decoded_video_frames": sum(p.decoded_frames for p in self.participants),
        }


# Figures of the frames publishers sent, by the Participant attribute of their track.
SENT_TRACKS = (("audio", "mic"), ("video", "camera"), ("video_low_layer", "camera_low"))


@dataclass(frozen=True)
class Mark:
    """Counters at one end of the measured window."""

    at: float
    relay_cpu: float
    relay_system_cpu: float
    generator_cpu: float
    relay_wait: float
    generator_wait: float
    cores: dict[int, tuple[int, int]]
    udp_drops: int
    udp_sent: dict[AddressFamily, int]
    relay: dict[str, Any]
    meters: list[tuple[int, int, int]]
    sent: dict[str, int]
    layers: dict[str, Any]
    """The relay's `layers` reply (bench.relay.relay_server.Layers)."""


def _layer_figures(layers: dict[str, Any]) -> dict[str, Any]:
    """How many video slots carry each layer, and what a subscriber is forwarded (audio and video
    payload, the relay's measured bitrates), at the end of the window."""
    carried = [layer for slots in layers["slots"].values() for layer in slots.values()]
    kbps = list(layers["kbps"].values())
    return {
        "high_layer_slots": carried.count("camera"),
        "low_layer_slots": carried.count("camera-low"),
        "forwarded_kbps_per_subscriber": round(statistics.fmean(kbps), 1) if kbps else None,
    }


def _core_busy(before: Mark, after: Mark, core: int) -> float | None:
    if core not in before.cores or core not in after.cores:
        return None
    busy = after.cores[core][0] - before.cores[core][0]
    total = after.cores[core][1] - before.cores[core][1]
    return round(busy / total * 100, 1) if total else None


def _ratio(numerator: float, denominator: float, digits: int) -> float | None:
    if not denominator:
        return None
    value = numerator / denominator
    return round(value, digits) if digits else round(value)


def cores_busy() -> dict[int, tuple[int, int]]:
    """(busy, total) clock ticks of each core so far, from /proc/stat."""
    cores: dict[int, tuple[int, int]] = {}
    with open("/proc/stat") as stat:
        for line in stat:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks = [int(v) for v in values]
                idle = ticks[3] + ticks[4]  # idle and iowait
                cores[int(name[3:])] = (sum(ticks[:8]) - idle, sum(ticks[:8]))
    return cores


def udp_receive_drops() -> int:
    """UDP datagrams dropped so far for want of receive buffer, machine-wide (/proc/net/snmp)."""
    with open("/proc/net/snmp") as snmp:
        header, values = (line.split() for line in snmp if line.startswith("Udp:"))
    return int(values[header.index("RcvbufErrors")])


def udp_datagrams_sent() -> dict[AddressFamily, int]:
    """UDP datagrams sent so far, machine-wide, by address family (/proc/net/snmp and snmp6)."""
    with open("/proc/net/snmp") as snmp:
        header, values = (line.split() for line in snmp if line.startswith("Udp:"))
    with open("/proc/net/snmp6") as snmp6:
        ipv6 = next(int(line.split()[1]) for line in snmp6 if line.startswith("Udp6OutDatagrams"))
    return {"ipv4": int(values[header.index("OutDatagrams")]), "ipv6": ipv6}


def only_candidates_of(sdp: str, family: AddressFamily) -> str:
    """`sdp` with the ICE candidates of `family` only, as a peer on such a network would send it.

    Raises ValueError when none is left: the benchmark cannot run on that family here.
    """
    lines = sdp.split("\r\n")
    kept = [
        line
        for line in lines
        if not line.startswith("a=candidate:") or _candidate_family(line) == family
    ]
    if not any(line.startswith("a=candidate:") for line in kept):
        raise ValueError(f"no {family} ICE candidate in the session description")
    return "\r\n".join(kept)


def _candidate_family(line: str) -> AddressFamily:
    # a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...
    return "ipv6" if ":" in line.split()[4] else "ipv4"


def run_queue_seconds(pid: int | str = "self") -> float:
    """Time the process's main thread spent runnable but waiting for a core (schedstat)."""
    with open(f"/proc/{pid}/schedstat") as schedstat:
        return int(schedstat.read().split()[1]) / 1e9


async def _generate(
    conn: Connection, scenario: Scenario, clip: EncodedClip, seconds: float, relay_pid: int
) -> dict[str, Any]:
    generator = Generator(scenario, clip, Channel(conn))
    return await generator.run(seconds, relay_pid)


def main(
    conn: Connection,
    report: Connection,
    scenario: Scenario,
    clip: EncodedClip,
    seconds: float,
    relay_pid: int,
    core: int,
) -> None:
    """Entry point of the generator process: pin it to `core`, run, send the result on `report`."""
    os.sched_setaffinity(0, {core})
    try:
        result = asyncio.run(_generate(conn, scenario, clip, seconds, relay_pid))
    except Exception as exc:
        report.send({"error": repr(exc)})
    else:
        report.send(result)
