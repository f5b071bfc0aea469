"""Pre-encoded media for the load generator: a VP8 clip and an Opus tone, encoded once, looped.

Publishers must cost the generator almost nothing per frame, so nothing is encoded while a
benchmark runs: `encoded_clip()` encodes 2.5 s of a scrolling textured picture (640x360, 30 fps,
about 500 kbit/s, one keyframe of 15-30 KB at the start), the same picture as a simulcast low
layer (320x180, 15 fps, about 150 kbit/s, as a browser's low layer, 3 s from one keyframe of a
quarter of the pixels) and 1 s of a gliding tone (Opus, 20 ms frames) once per process, and
`ClipTrack.recv()` hands aiortc's sender the stored packets as `av.Packet`s at the clip's frame
rate; the sender then only packetises them. A keyframe request restarts the video clip, whose
first frame is its only keyframe, so the stream stays decodable.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from aiortc.mediastreams import MediaStreamTrack


@dataclass(frozen=True)
class VideoFormat:
    """Size, rate and length of one pre-encoded video clip (its first frame is its keyframe)."""

    width: int
    height: int
    fps: int
    bitrate: int
    frames: int
    max_intra_pct: int | None = None
    """libvpx's cap on a keyframe, in percent of an average frame (None: libvpx's default)."""

    def describe(self) -> str:
        return f"VP8 {self.width}x{self.height} {self.fps} fps"


# 2.5 s: one keyframe every 2.5 s, as a browser's encoder roughly does.
HIGH = VideoFormat(width=640, height=360, fps=30, bitrate=500_000, frames=75)
# A browser's low simulcast layer: at most 320 wide, 150 kbit/s and 15 fps. Uncapped, the noisy
# texture's keyframe takes 14 KB, most of the layer's first second; capped, ~5 KB, a quarter of the
# high layer's keyframe for a quarter of the pixels, as a camera's would be.
LOW = VideoFormat(width=320, height=180, fps=15, bitrate=150_000, frames=45, max_intra_pct=1200)
AUDIO_FRAMES = 50  # 1 s of 20 ms Opus frames
AUDIO_RATE = 48_000
AUDIO_FRAME_SAMPLES = 960
# Noise on top of the blocks: with 10 grey levels the keyframe lands at 15-30 KB, as a camera's.
_TEXTURE_NOISE = 10
# Blocks and scrolling in pixels of the high layer; a smaller clip shows the same picture scaled.
_BLOCK = 16
_SCROLL_PER_FRAME = 3
# Frames are told apart on arrival by the last bytes of their last RTP packet (see loadgen).
KEY_BYTES = 16


@dataclass(frozen=True)
class EncodedClip:
    """The packets publishers loop: VP8 frames (the first a keyframe), the same picture's low
    simulcast layer (`low_video`, at `LOW`) and Opus frames."""

    video: tuple[bytes, ...]
    audio: tuple[bytes, ...]
    low_video: tuple[bytes, ...]

    def describe(self) -> dict[str, Any]:
        """Sizes for the benchmark's conditions."""
        return {
            **_describe_video(HIGH, self.video, ""),
            **_describe_video(LOW, self.low_video, "low_layer_"),
            "audio": "Opus 48 kHz stereo, 20 ms frames",
            "audio_kbit_s": round(sum(map(len, self.audio)) * 8 / (len(self.audio) / 50) / 1000),
        }


def _describe_video(form: VideoFormat, frames: tuple[bytes, ...], prefix: str) -> dict[str, Any]:
    seconds = len(frames) / form.fps
    return {
        f"{prefix}video": form.describe(),
        f"{prefix}video_kbit_s": round(sum(map(len, frames)) * 8 / seconds / 1000),
        f"{prefix}keyframe_bytes": len(frames[0]),
        f"{prefix}keyframe_interval_s": seconds,
    }


@functools.cache
def encoded_clip() -> EncodedClip:
    """Encode the clips (a few seconds of CPU; once per process)."""
    return EncodedClip(
        video=tuple(_encode_video(HIGH)),
        audio=tuple(_encode_audio()),
        low_video=tuple(_encode_video(LOW)),
    )


def _encode_video(form: VideoFormat) -> list[bytes]:
    rnd = random.Random(6)
    width, height = form.width, form.height
    block = _BLOCK * width // HIGH.width
    # The same scrolling speed across the picture, whatever its size and frame rate.
    scroll = _SCROLL_PER_FRAME * width * HIGH.fps // (HIGH.width * form.fps)
    span = 2 * width  # the picture scrolls over a texture twice as wide
    columns = span // block
    blocks = [rnd.randrange(40, 216) for _ in range(columns * (height // block + 1))]
    rows = [
        bytes(
            blocks[(y // block) * columns + x // block] + rnd.randrange(_TEXTURE_NOISE)
            for x in range(span)
        )
        for y in range(height)
    ]
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = form.bitrate
    codec.framerate = Fraction(form.fps)
    codec.time_base = Fraction(1, form.fps)
    codec.gop_size = form.frames
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    if form.max_intra_pct is not None:
        codec.options = {**codec.options, "max-intra-rate": str(form.max_intra_pct)}
    chroma = bytes([128]) * (width * height // 4)
    packets: list[bytes] = []
    for index in range(form.frames):
        frame = av.VideoFrame(width, height, "yuv420p")
        shift = index * scroll
        frame.planes[0].update(b"".join(row[shift : shift + width] for row in rows))
        frame.planes[1].update(chroma)
        frame.planes[2].update(chroma)
        frame.pts = index
        packets.extend(bytes(packet) for packet in codec.encode(frame))
    packets.extend(bytes(packet) for packet in codec.encode(None))
    return packets


def _encode_audio() -> list[bytes]:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_RATE
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 32_000
    codec.time_base = Fraction(1, AUDIO_RATE)
    packets: list[bytes] = []
    phase = 0.0
    for index in range(AUDIO_FRAMES + 5):  # a few extra to flush the encoder's look-ahead
        # A gliding tone: every frame differs, so each one can be recognised on arrival.
        step = 2 * math.pi * (330 + 4 * index) / AUDIO_RATE
        samples = bytearray()
        for _ in range(AUDIO_FRAME_SAMPLES):
            value = int(8000 * math.sin(phase)).to_bytes(2, "little", signed=True)
            samples += value + value
            phase += step
        frame = av.AudioFrame(format="s16", layout="stereo", samples=AUDIO_FRAME_SAMPLES)
        frame.planes[0].update(bytes(samples))
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * AUDIO_FRAME_SAMPLES
        frame.time_base = codec.time_base
        packets.extend(bytes(packet) for packet in codec.encode(frame))
    return packets[:AUDIO_FRAMES]


SendObserver = Callable[[bytes, float], None]
"""Called with (the frame's key, time.monotonic()) as each frame goes to the sender."""


class ClipTrack(MediaStreamTrack):
    """A publisher's track: the clip's packets, paced in real time (`fps` for video), looped
    without re-encoding."""

    def __init__(
        self,
        kind: str,
        frames: tuple[bytes, ...],
        on_send: SendObserver,
        *,
        start: int = 0,
        fps: int = HIGH.fps,
    ) -> None:
        super().__init__()
        self.kind = kind
        self._frames = frames
        self._keys = [frame[-KEY_BYTES:] for frame in frames]
        self._on_send = on_send
        self._index = start % len(frames)
        self._interval = 1 / fps if kind == "video" else AUDIO_FRAME_SAMPLES / AUDIO_RATE
        self._ticks = 90_000 // fps if kind == "video" else AUDIO_FRAME_SAMPLES
        self._time_base = Fraction(1, 90_000 if kind == "video" else AUDIO_RATE)
        self._sent = 0
        self._sent_total = 0
        self._started: float | None = None

    @property
    def frames_sent(self) -> int:
        return self._sent_total

    def request_keyframe(self) -> None:
        """Send the clip's first frame (its keyframe) next."""
        if self.kind == "video":
            self._index = 0

    async def recv(self) -> av.Packet[Any]:
        now = time.monotonic()
        if self._started is None:
            self._started = now
        due = self._started + self._sent * self._interval
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > 1:
            # A generator that fell a second behind starts afresh instead of bursting.
            self._started, self._sent = now, 0
        index = self._index
        self._index = (index + 1) % len(self._frames)
        packet = av.Packet(self._frames[index])
        packet.pts = self._sent * self._ticks
        packet.time_base = self._time_base
        self._sent += 1
        self._sent_total += 1
        self._on_send(self._keys[index], time.monotonic())
        return packet
