"""The few places where the relay reaches inside aiortc, written for aiortc 1.16.0 only.

aiortc has no public API for forwarding encoded media: its receiver hands every reassembled frame
to a decoder thread, and its sender's keyframe requests go to its own encoder. This module is the
only one allowed to touch aiortc's private attributes (pinned as `aiortc==1.16.0` in
pyproject.toml); `tests/media_relay/test_aiortc_internals.py` covers each of them, and the import
below fails with a clear message when an upgrade moved one. What it relies on:

- `RTCRtpReceiver._RTCRtpReceiver__decoder_queue`: a `queue.Queue` that `_handle_rtp_packet` fills
  with `(codec, JitterFrame)` on the event loop while `_RTCRtpReceiver__decoder_thread` is set, and
  that the decoder thread started by `receive()` drains with `get()` until it reads `None`.
- `RTCRtpReceiver._RTCRtpReceiver__jitter_buffer`: the `JitterBuffer` that reassembles frames; its
  `add(packet)` sees every media packet after RTX unwrapping, so with the publisher's media SSRC.
- `RTCRtpReceiver._send_rtcp_pli(media_ssrc)`: sends a picture loss indication to the publisher.
- `RTCRtpSender._send_keyframe()`: called by `_handle_rtcp_packet` for a subscriber's PLI or FIR.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

PINNED_AIORTC = "1.16.0"

_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"


EncodedFrameSink = Callable[[str, bytes, int], None]
"""Called on the event loop with (codec mime type, frame bitstream, RTP timestamp from zero)."""


class AiortcChangedError(RuntimeError):
    """The installed aiortc lacks an internal the relay relies on."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"aiortc internal {what!r} is missing: the relay is written for aiortc=="
            f"{PINNED_AIORTC}; re-check media_relay/aiortc_internals.py before upgrading"
        )


def _require_class_attributes() -> None:
    for cls, name in (
        (RTCRtpReceiver, "_send_rtcp_pli"),
        (RTCRtpReceiver, "_handle_rtp_packet"),
        (RTCRtpReceiver, "_RTCRtpReceiver__stop_decoder"),
        (RTCRtpSender, "_send_keyframe"),
        (RTCRtpSender, "_handle_rtcp_packet"),
        (JitterBuffer, "add"),
    ):
        if not hasattr(cls, name):
            raise AiortcChangedError(f"{cls.__name__}.{name}")


def _require_instance_attribute(receiver: RTCRtpReceiver, name: str) -> Any:
    try:
        return getattr(receiver, name)
    except AttributeError:
        raise AiortcChangedError(f"RTCRtpReceiver.{name}") from None


_require_class_attributes()


class _SsrcRecordingJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, remembering the media SSRC it reassembles (for keyframe requests)."""

    media_ssrc: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self.media_ssrc = packet.ssrc
        return super().add(packet)


class _FrameTap:
    """Stands in for the receiver's decoder queue: frames go to the sink, not to a decoder.

    `put` runs on the event loop (inside `_handle_rtp_packet`), so the sink is called there at
    once. Without passthrough, `get` answers `None` straight away: the decoder thread `receive()`
    starts ends at once, and aiortc's own stop (`put(None)`, `join()`) still works.
    """

    def __init__(self, sink: EncodedFrameSink, passthrough: queue.Queue[Any] | None) -> None:
        self._sink = sink
        self._passthrough = passthrough

    def put(self, item: tuple[Any, JitterFrame] | None) -> None:
        if item is not None:
            codec, frame = item
            self._sink(codec.mimeType, frame.data, frame.timestamp)
        if self._passthrough is not None:
            self._passthrough.put(item)

    def get(self) -> tuple[Any, JitterFrame] | None:
        if self._passthrough is None:
            return None
        item: tuple[Any, JitterFrame] | None = self._passthrough.get()
        return item


class ReceiverTap:
    """A receiver whose encoded frames are handed to a sink (see `tap_receiver`)."""

    def __init__(self, receiver: RTCRtpReceiver, jitter_buffer: _SsrcRecordingJitterBuffer):
        self._receiver = receiver
        self._jitter_buffer = jitter_buffer

    @property
    def media_ssrc(self) -> int | None:
        """The publisher's media SSRC, once a packet has arrived."""
        return self._jitter_buffer.media_ssrc

    async def request_keyframe(self) -> bool:
        """Send the publisher a PLI; False when no media has arrived yet (no SSRC to name)."""
        ssrc = self.media_ssrc
        if ssrc is None:
            return False
        await self._receiver._send_rtcp_pli(ssrc)
        return True


def tap_receiver(
    receiver: RTCRtpReceiver, kind: str, sink: EncodedFrameSink, *, passthrough: bool = False
) -> ReceiverTap:
    """Send the receiver's reassembled encoded frames to `sink` instead of its decoder.

    Call it before `receive()` starts the receiver (i.e. before `setLocalDescription`). With
    `passthrough` the frames are also decoded as usual (tests use it to observe frames).
    """
    if _require_instance_attribute(receiver, _DECODER_THREAD) is not None:
        raise RuntimeError("tap_receiver() must run before the receiver starts")
    original: queue.Queue[Any] = _require_instance_attribute(receiver, _DECODER_QUEUE)
    _require_instance_attribute(receiver, _JITTER_BUFFER)
    if kind == "video":
        jitter_buffer = _SsrcRecordingJitterBuffer(capacity=512, is_video=True)
    else:
        # An Opus frame is one packet: aiortc's prefetch of 4 frames would only add 60 ms delay.
        jitter_buffer = _SsrcRecordingJitterBuffer(capacity=16, prefetch=0)
    setattr(receiver, _JITTER_BUFFER, jitter_buffer)
    setattr(receiver, _DECODER_QUEUE, _FrameTap(sink, original if passthrough else None))
    return ReceiverTap(receiver, jitter_buffer)


def hook_keyframe_requests(
    sender: RTCRtpSender, on_request: Callable[[], None], *, chain: bool = False
) -> None:
    """Call `on_request` when the sender's remote peer asks for a keyframe (PLI or FIR).

    With `chain`, aiortc's own handling (forcing its encoder's next frame to be a keyframe) runs
    too; a forwarding sender has no encoder to force, so the relay does not chain.
    """
    original = sender._send_keyframe

    def send_keyframe() -> None:
        on_request()
        if chain:
            original()

    # An instance attribute shadows the method that `_handle_rtcp_packet` looks up on `self`.
    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]
