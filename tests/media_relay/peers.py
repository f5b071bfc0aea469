"""Synthetic lesson participants: aiortc peer connections that act as the browser does.

Each one offers like the class page (sendonly mic and camera, then recvonly receive slots), answers
nothing (the relay answers), and records what reaches each receive slot: encoded frames (with
whether the first was a keyframe), decoded frames (proof the VP8 and Opus are valid), RTP
packets. The room and consumer tests import it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import av
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from aiortc.mediastreams import VideoStreamTrack as _VideoStreamTrack

from media_relay.aiortc_internals import ReceiverTap, hook_keyframe_requests, tap_receiver
from media_relay.forwarding import (
    CONNECT_TIMEOUT,
    LessonForwarder,
    OfferSource,
    PeerState,
    SlotTrack,
    is_vp8_keyframe,
)

WIDTH, HEIGHT = 160, 120
# The low simulcast layer: smaller, and with planes whose rows need no padding (a multiple of 32
# luma pixels wide), which the pattern's plane writes assume.
LOW_WIDTH, LOW_HEIGHT = 96, 72


class PatternVideoTrack(_VideoStreamTrack):
    """A small moving picture: cheap to encode, yet every frame differs (real delta frames)."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        super().__init__()
        self.width, self.height = width, height

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        width, height = self.width, self.height
        frame = av.VideoFrame(width, height, "yuv420p")
        shift = pts // 3000
        luma = bytes((x + shift * 7) % 256 for x in range(width)) * height
        frame.planes[0].update(luma)
        chroma = bytes([128]) * (width * height // 4)
        frame.planes[1].update(chroma)
        frame.planes[2].update(chroma)
        frame.pts = pts
        frame.time_base = time_base
        return frame


@dataclass
class Reception:
    """What one receive slot of a synthetic participant got."""

    encoded_frames: int = 0
    keyframes: int = 0
    first_frame_keyframe: bool | None = None
    decoded_frames: int = 0
    decoded_width: int | None = None
    """Of the last frame decoded."""


@dataclass
class SyntheticParticipant:
    """One participant's peer connection, offering like the class page."""

    name: str
    send_audio: bool = True
    send_video: bool = True
    audio_slots: int = 2
    video_slots: int = 2
    pc: RTCPeerConnection = field(
        # As the browser does (and as aiortc needs when transceivers exist before the answer).
        default_factory=lambda: RTCPeerConnection(
            RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
    )
    keyframe_requests: int = 0
    """PLI/FIR received for the camera (each one also makes aiortc's encoder send a keyframe)."""
    simulcast: bool = False
    """Send the camera's low layer too (`camera-low`, LOW_WIDTH wide), as the class page does."""
    low_layer_silent: bool = False
    """With `simulcast`, name the low layer's transceiver in the offer but send nothing on it."""
    low_keyframe_requests: int = 0

    def __post_init__(self) -> None:
        self.receptions: dict[RTCRtpTransceiver, Reception] = {}
        self.taps: dict[RTCRtpTransceiver, ReceiverTap] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.mic = self.pc.addTransceiver(
            AudioStreamTrack() if self.send_audio else "audio", direction="sendonly"
        )
        self.camera = self.pc.addTransceiver(
            PatternVideoTrack() if self.send_video else "video", direction="sendonly"
        )
        hook_keyframe_requests(self.camera.sender, self._count_keyframe_request, chain=True)
        self.camera_low: RTCRtpTransceiver | None = None
        if self.simulcast:
            self.camera_low = self.pc.addTransceiver(
                "video" if self.low_layer_silent else PatternVideoTrack(LOW_WIDTH, LOW_HEIGHT),
                direction="sendonly",
            )
            hook_keyframe_requests(
                self.camera_low.sender, self._count_low_keyframe_request, chain=True
            )
        self.pc.on("track", self._on_track)
        self.add_slots(audio=self.audio_slots, video=self.video_slots)

    def _count_keyframe_request(self) -> None:
        self.keyframe_requests += 1

    def _count_low_keyframe_request(self) -> None:
        self.low_keyframe_requests += 1

    def add_slots(self, *, audio: int, video: int) -> None:
        """Add recvonly transceivers (offer again afterwards), as the page does on `slots`."""
        for kind, count in (("audio", audio), ("video", video)):
            for _ in range(count):
                transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                reception = Reception()
                self.receptions[transceiver] = reception
                self.taps[transceiver] = tap_receiver(
                    transceiver.receiver,
                    kind,
                    _recorder(reception, video=kind == "video"),
                    passthrough=True,
                )

    async def offer(self) -> tuple[str, dict[str, OfferSource]]:
        """Create and set the offer; return its SDP and the `sources` map of the offer message."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sources: dict[str, OfferSource] = {}
        if self.mic.mid is not None:
            sources[self.mic.mid] = "mic"
        if self.camera.mid is not None:
            sources[self.camera.mid] = "camera"
        if self.camera_low is not None and self.camera_low.mid is not None:
            sources[self.camera_low.mid] = "camera-low"
        return self.pc.localDescription.sdp, sources

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def join(self, forwarder: LessonForwarder) -> None:
        """Offer to the relay and apply its answer."""
        sdp, sources = await self.offer()
        await self.accept(await forwarder.negotiate(self.name, sdp, sources))

    def reception(self, mid: str) -> Reception:
        return self.receptions[self._transceiver(mid)]

    async def packets_received(self, mid: str) -> int:
        """RTP packets the slot's receiver counted (retransmissions included)."""
        report = await self._transceiver(mid).receiver.getStats()
        return sum(
            stats.packetsReceived for stats in report.values() if stats.type == "inbound-rtp"
        )

    async def sender_report(self, mid: str) -> tuple[int, int] | None:
        """(packets, octets) the relay's last RTCP sender report for the slot claimed sent."""
        report = await self._transceiver(mid).receiver.getStats()
        return next(
            (
                (stats.packetsSent, stats.bytesSent)
                for stats in report.values()
                if stats.type == "remote-outbound-rtp"
            ),
            None,
        )

    async def report_picture_loss(self, mid: str) -> bool:
        """Send the relay a PLI for the slot, as a browser does when it cannot decode."""
        return await self.taps[self._transceiver(mid)].request_keyframe()

    async def estimate_bandwidth(self, bitrate: int) -> None:
        """Tell the relay this participant's downlink carries `bitrate` bits per second (one REMB
        naming every video slot, as a browser sends), instead of aiortc's own estimates."""
        for transceiver in self.taps:
            # aiortc's receivers send their own estimates, which would overwrite this one.
            setattr(transceiver.receiver, "_RTCRtpReceiver__remote_bitrate_estimator", None)  # noqa: B010
        # Browsers estimate from abs-send-time, which only video carries: audio goes unnamed.
        ssrcs = [
            tap.media_ssrc
            for transceiver, tap in self.taps.items()
            if transceiver.kind == "video" and tap.media_ssrc is not None
        ]
        await next(iter(self.taps.values())).send_bandwidth_estimate(bitrate, ssrcs)

    def _transceiver(self, mid: str) -> RTCRtpTransceiver:
        return next(t for t in self.receptions if t.mid == mid)

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next((t for t in self.receptions if t.receiver.track is track), None)
        if transceiver is not None:
            task = asyncio.get_running_loop().create_task(
                _count_decoded(track, self.receptions[transceiver])
            )
            self._tasks.add(task)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()


def _recorder(reception: Reception, *, video: bool) -> Callable[[str, bytes, int], None]:
    def record(_mime: str, data: bytes, _timestamp: int) -> None:
        keyframe = not video or is_vp8_keyframe(data)
        if reception.first_frame_keyframe is None:
            reception.first_frame_keyframe = keyframe
        reception.encoded_frames += 1
        reception.keyframes += keyframe

    return record


async def _count_decoded(track: MediaStreamTrack, reception: Reception) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            reception.decoded_frames += 1
            if isinstance(frame, av.VideoFrame):
                reception.decoded_width = frame.width


async def wait_for(condition: Callable[[], bool], *, within: float = 5.0) -> None:
    """Poll `condition` until it holds; fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {within} s: {condition}")
        await asyncio.sleep(0.02)


@dataclass
class RecordedCallbacks:
    """The forwarder's callbacks, recorded in order (pass `.kwargs` to `LessonForwarder`)."""

    peer_states: list[tuple[str, str]] = field(default_factory=list)
    tracks: dict[str, dict[str, tuple[str, str] | None]] = field(default_factory=dict)
    slots_wanted: list[tuple[str, int, int]] = field(default_factory=list)

    def forwarder(self, *, connect_timeout: float = CONNECT_TIMEOUT) -> LessonForwarder:
        """A forwarder reporting to these callbacks."""
        return LessonForwarder(
            on_peer_state=self.on_peer_state,
            on_tracks=self.on_tracks,
            on_slots_wanted=self.on_slots_wanted,
            connect_timeout=connect_timeout,
        )

    def on_peer_state(self, participant: str, state: PeerState) -> None:
        self.peer_states.append((participant, state))

    def on_tracks(self, participant: str, mids: Mapping[str, SlotTrack | None]) -> None:
        self.tracks[participant] = {
            mid: None if track is None else (track.participant, track.source)
            for mid, track in mids.items()
        }

    def on_slots_wanted(self, participant: str, audio: int, video: int) -> None:
        self.slots_wanted.append((participant, audio, video))

    def mid_carrying(self, subscriber: str, publisher: str, source: str) -> str | None:
        """The subscriber's mid that carries the publisher's source now, if any."""
        return next(
            (
                mid
                for mid, track in self.tracks.get(subscriber, {}).items()
                if track == (publisher, source)
            ),
            None,
        )


class SyntheticLesson:
    """A forwarder, its recorded callbacks, and the synthetic participants that joined it.

    The relay tests' lessons build on it; `forwarder` may be given when a test needs other
    callbacks or options than `RecordedCallbacks.forwarder()` makes.
    """

    def __init__(
        self, callbacks: RecordedCallbacks | None = None, forwarder: LessonForwarder | None = None
    ) -> None:
        self.callbacks = callbacks or RecordedCallbacks()
        self.forwarder = forwarder or self.callbacks.forwarder()
        self.participants: dict[str, SyntheticParticipant] = {}

    async def add(self, participant: SyntheticParticipant) -> SyntheticParticipant:
        """The participant offers to the relay and applies its answer."""
        self.participants[participant.name] = participant
        await participant.join(self.forwarder)
        return participant

    def mid(self, subscriber: str, publisher: str, source: str) -> str:
        """The subscriber's receive slot carrying the publisher's source."""
        mid = self.callbacks.mid_carrying(subscriber, publisher, source)
        assert mid is not None, f"{subscriber} has no slot with {publisher}'s {source}"
        return mid

    async def close(self) -> None:
        for participant in self.participants.values():
            await participant.close()
        await self.forwarder.close()
