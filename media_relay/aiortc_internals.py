"""The few places where the relay reaches inside aiortc, written for aiortc 1.16.0 only.

aiortc has no public API for forwarding encoded media: its receiver hands every reassembled frame
to a decoder thread, its sender packetises frames itself in one coroutine per sender, and its
keyframe requests go to its own encoder. This module is the only one allowed to touch aiortc's
private attributes (pinned as `aiortc==1.16.0` in
pyproject.toml); `tests/media_relay/test_aiortc_internals.py` covers each of them, and the import
below fails with a clear message when an upgrade moved one. What it relies on:

- `RTCRtpReceiver._RTCRtpReceiver__decoder_queue`: a `queue.Queue` that `_handle_rtp_packet` fills
  with `(codec, JitterFrame)` on the event loop while `_RTCRtpReceiver__decoder_thread` is set, and
  that the decoder thread started by `receive()` drains with `get()` until it reads `None`.
- `RTCRtpReceiver._RTCRtpReceiver__jitter_buffer`: the `JitterBuffer` that reassembles frames; its
  `add(packet)` sees every media packet after RTX unwrapping, so with the publisher's media SSRC.
- `RTCRtpReceiver._send_rtcp_pli(media_ssrc)`: sends a picture loss indication to the publisher;
  `_send_rtcp_nack(media_ssrc, lost)` a NACK and `_send_rtcp(packet)` any RTCP packet (REMB).
- `RTCRtpReceiver._handle_rtp_packet(packet, arrival_time_ms)`: awaited by the DTLS transport for
  each RTP packet routed to the receiver, looked up on the instance (so an instance attribute
  replaces it). The packet tap's replacement uses the receiver's `_enabled` and its private
  `__codecs` (payload type -> codec) and `__rtx_ssrc` (RTX SSRC -> media SSRC), both filled by
  `receive()`; `__remote_streams` (SSRC -> `StreamStatistics`), which its RTCP loop turns into
  receiver reports; `__nack_generator` (`NackGenerator`, video only);
  `__remote_bitrate_estimator` (`RemoteBitrateEstimator`, video only: aiortc's own is run as its
  compiled copy, `media_relay._estimate`, which tests hold to aiortc 1.16.0's answers);
  and `__rtcp_ssrc`.
- `RTCRtpSender._send_keyframe()`: called by `_handle_rtcp_packet` for a subscriber's PLI or FIR.
- `RTCRtpSender._retransmit(seq)`: awaited by `_handle_rtcp_packet` for each sequence number of a
  subscriber's NACK.
- `RTCRtpSender.send(parameters)`: awaited once the DTLS transport is connected, with the
  negotiated payload types, header extension ids and mid.
- `RTCRtpSender._ssrc`, `_rtx_ssrc` and the counters its RTCP loop reports in sender reports and
  `getStats()` reads: `_RTCRtpSender__packet_count`, `__octet_count`, `__rtp_timestamp`,
  `__ntp_timestamp`.
- `RTCRtpSender._run_rtcp()`: the sender's RTCP loop, started by `send()` (looked up on the
  instance, so an instance attribute replaces it); `stop()` waits for `__rtcp_started`, cancels
  the task and waits for `__rtcp_exited`. Its reports use `__cname` and set `__lsr` and
  `__lsr_time`, which round-trip times are computed from.
- `RTCDtlsTransport._state` (a `State`), `_tx_srtp` (a pylibsrtp `Session`),
  `RTCIceTransport._connection` (aioice's `Connection`) and its `_nominated[1]` candidate pair,
  whose `protocol.transport` is the datagram transport aiortc itself sends on.
- The receive side of the same: aioice's `StunProtocol` hands each non-STUN datagram to
  `Connection.data_received(data, component)` (looked up on the instance), which queues it for the
  DTLS transport's task; the transport unprotects with `_rx_srtp`, parses with
  `_rtp_header_extensions_map`, routes with `_rtp_router` (whose `ssrc_table` maps SSRC ->
  receiver) and counts `__rx_bytes` / `__rx_packets` for `getStats()`.
- aioice's `Connection._protocols` (its `StunProtocol`s, each with `transport` and
  `local_candidate`) and asyncio's selector loop: `_add_reader(fd, callback, *args)` replaces a
  `_SelectorDatagramTransport`'s reader on its socket, whose `close()` removes whichever reader
  is there.
- pylibsrtp 1.0 (aiortc's SRTP): `Session._srtp[0]` is the libsrtp `srtp_t`, and
  `pylibsrtp._binding.lib.srtp_protect` is libsrtp 2's `srtp_protect(ctx, rtp, *len)`; the
  compiled fan-out loop calls it with the session's own context (single-threaded, on the loop).
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import logging
import queue
import random
import socket
import time
import weakref
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pylibsrtp
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCStatsReport
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    AnyRtcpPacket,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
    clamp_packets_lost,
    pack_remb_fci,
    unpack_remb_fci,
    unwrap_rtx,
)
from pylibsrtp import _binding as srtp_binding

from media_relay._estimate import Estimator
from media_relay._fanout import EstimateFeed, Ingest, Stream, read_datagrams

PINNED_AIORTC = "1.16.0"

logger = logging.getLogger(__name__)

_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_CODECS = "_RTCRtpReceiver__codecs"
_KIND = "_RTCRtpReceiver__kind"
_RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"
_REMOTE_STREAMS = "_RTCRtpReceiver__remote_streams"
_NACK_GENERATOR = "_RTCRtpReceiver__nack_generator"
_BITRATE_ESTIMATOR = "_RTCRtpReceiver__remote_bitrate_estimator"
_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"
_RX_BYTES = "_RTCDtlsTransport__rx_bytes"
_PACKET_COUNT = "_RTCRtpSender__packet_count"
_OCTET_COUNT = "_RTCRtpSender__octet_count"
_RTP_TIMESTAMP = "_RTCRtpSender__rtp_timestamp"
_NTP_TIMESTAMP = "_RTCRtpSender__ntp_timestamp"
_RTCP_STARTED = "_RTCRtpSender__rtcp_started"
_RTCP_EXITED = "_RTCRtpSender__rtcp_exited"
_CNAME = "_RTCRtpSender__cname"
_LSR = "_RTCRtpSender__lsr"
_LSR_TIME = "_RTCRtpSender__lsr_time"
# Sender reports sent in one SRTCP datagram: ten reports and their CNAMEs are ~730 bytes.
REPORTS_PER_DATAGRAM = 10
_EXTENSION_IDS = "_HeaderExtensionsMap__ids"
# libsrtp's unprotect, as the compiled ingest calls it (pylibsrtp links libsrtp 2 in).
_SRTP_UNPROTECT = int(
    srtp_binding.ffi.cast(
        "uintptr_t", srtp_binding.ffi.addressof(srtp_binding.lib, "srtp_unprotect")
    )
)
_RX_PACKETS = "_RTCDtlsTransport__rx_packets"
# aiortc's `clock.current_ms()` counts from the NTP epoch (1900); arrival times must match it.
_NTP_EPOCH_MS = 2_208_988_800_000


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
        (RTCRtpReceiver, "_send_rtcp_nack"),
        (RTCRtpReceiver, "_send_rtcp"),
        (RTCRtpReceiver, "_handle_rtp_packet"),
        (RTCRtpReceiver, "_RTCRtpReceiver__stop_decoder"),
        (RTCRtpSender, "_send_keyframe"),
        (RTCRtpSender, "_handle_rtcp_packet"),
        (RTCRtpSender, "_retransmit"),
        (RTCRtpSender, "_send_rtcp"),
        (RTCRtpSender, "_run_rtcp"),
        (RTCRtpSender, "send"),
        (JitterBuffer, "add"),
    ):
        if not hasattr(cls, name):
            raise AiortcChangedError(f"{cls.__name__}.{name}")


def _require_instance_attribute(instance: object, name: str) -> Any:
    try:
        return getattr(instance, name)
    except AttributeError:
        raise AiortcChangedError(f"{type(instance).__name__}.{name}") from None


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


class _SeesMediaSsrc(Protocol):
    media_ssrc: int | None


class ReceiverTap:
    """A tapped receiver (see `tap_receiver` and `tap_receiver_packets`)."""

    def __init__(self, receiver: RTCRtpReceiver, seen: _SeesMediaSsrc):
        self._receiver = receiver
        self._seen = seen

    @property
    def media_ssrc(self) -> int | None:
        """The publisher's media SSRC, once a packet has arrived."""
        return self._seen.media_ssrc

    async def request_keyframe(self) -> bool:
        """Send the publisher a PLI; False when no media has arrived yet (no SSRC to name)."""
        ssrc = self.media_ssrc
        if ssrc is None:
            return False
        await self._receiver._send_rtcp_pli(ssrc)
        return True

    async def send_bandwidth_estimate(self, bitrate: int, ssrcs: Sequence[int]) -> bool:
        """Send the remote peer a REMB of `bitrate` bits per second naming `ssrcs`, as a
        browser's receiver does for its whole connection; False before the RTCP SSRC is set."""
        rtcp_ssrc = _require_instance_attribute(self._receiver, _RTCP_SSRC)
        if rtcp_ssrc is None:
            return False
        await self._receiver._send_rtcp(
            RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP,
                ssrc=rtcp_ssrc,
                media_ssrc=0,
                fci=pack_remb_fci(bitrate, list(ssrcs)),
            )
        )
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


class FanoutSlot(Protocol):
    """What `SenderLeg.connect` needs of a compiled slot (`media_relay._fanout.Slot`)."""

    def connect_socket(
        self, session: object, srtp: int, protect: int, fd: int, host: str, port: int
    ) -> None: ...
    def connect_callable(self, send: Callable[[bytes], bool]) -> None: ...
    def counters(self) -> tuple[int, int, int, int, int, int, int, int]: ...


PacketSink = Callable[[RtpPacket], None]
"""Called on the event loop with each media packet: after SRTP, RTX unwrapped, payload intact."""

# aiortc's estimator costs ~50 us a call in Python. Fed once per frame of each stream, it was a
# tenth of a gallery's relay time; fed with what arrived since its last call, at most this often
# per connection, it sees the same bytes and the same send/arrival clocks, as from a ~15 fps
# stream.
ESTIMATE_EVERY_MS = 60


@dataclass(eq=False)
class _SharedEstimate:
    """One bandwidth estimator per publisher connection (one DTLS transport, bundled), shared by
    its video receivers. aiortc gives each receiver its own, whose REMB names that stream alone; a
    browser takes every REMB as the limit of its whole connection, so the estimate of the camera's
    low layer (~100 kbit/s) capped both layers together."""

    estimator: RemoteBitrateEstimator
    """The receiver's estimator; aiortc's own is run compiled (`compiled`) instead."""
    feed: EstimateFeed = field(default_factory=lambda: EstimateFeed(ESTIMATE_EVERY_MS))
    """Paces the estimator's calls (in C): the connection's streams' bytes since the last."""
    ssrcs: set[int] = field(default_factory=set)
    """The video streams of the connection, which every REMB names."""
    compiled: Estimator | None = None
    """aiortc's `RemoteBitrateEstimator` compiled (`media_relay._estimate`, ~1.5 against ~30-50 us
    a call), used when the receiver has aiortc's own (tests stand in estimators of their own)."""

    def __post_init__(self) -> None:
        if type(self.estimator) is RemoteBitrateEstimator:
            self.compiled = Estimator()

    def add(self, abs_send_time: int, arrival_time_ms: int, octets: int, ssrc: int) -> int | None:
        """Feed the estimator; the estimate in bits per second when one is due."""
        if self.compiled is not None:
            return self.compiled.add(
                arrival_time_ms=arrival_time_ms,
                abs_send_time=abs_send_time,
                payload_size=octets,
                ssrc=ssrc,
            )
        remb = self.estimator.add(
            abs_send_time=abs_send_time,
            arrival_time_ms=arrival_time_ms,
            payload_size=octets,
            ssrc=ssrc,
        )
        return None if remb is None else remb[0]


_ESTIMATES: weakref.WeakKeyDictionary[RTCDtlsTransport, _SharedEstimate] = (
    weakref.WeakKeyDictionary()
)


class _CompiledStatistics:
    """aiortc's `StreamStatistics` of one SSRC, kept by the compiled `Stream` that receives it:
    what the receiver's RTCP loop (receiver reports) and `getStats()` read, read from C."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._expected_prior = 0
        self._received_prior = 0

    def _read(self) -> tuple[int, int, int, int, int]:
        return self._stream.statistics() or (0, 0, 0, 0, 0)

    @property
    def base_seq(self) -> int:
        return self._read()[0]

    @property
    def max_seq(self) -> int:
        return self._read()[1]

    @property
    def cycles(self) -> int:
        return self._read()[2]

    @property
    def packets_received(self) -> int:
        return self._read()[3]

    @property
    def jitter(self) -> int:
        return self._read()[4] >> 4

    @property
    def packets_expected(self) -> int:
        base_seq, max_seq, cycles, _, _ = self._read()
        return cycles + max_seq - base_seq + 1

    @property
    def packets_lost(self) -> int:
        return clamp_packets_lost(self.packets_expected - self.packets_received)

    @property
    def fraction_lost(self) -> int:
        # aiortc's own computation, over what arrived since the last report.
        base_seq, max_seq, cycles, received, _ = self._read()
        expected = cycles + max_seq - base_seq + 1
        expected_interval = expected - self._expected_prior
        self._expected_prior = expected
        received_interval = received - self._received_prior
        self._received_prior = received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            return 0
        return (lost_interval << 8) // expected_interval


class _LeanReceivePath:
    """What a forwarding publisher leg needs of `RTCRtpReceiver._handle_rtp_packet`, no more.

    aiortc's own handler also depayloads each packet, feeds its jitter buffer and decoder queue,
    timestamps each SSRC with a datetime and runs the bandwidth estimator on every video packet.
    Here each media packet goes to the compiled `Stream` (`media_relay._fanout`), which keeps
    the receiver-report statistics (read back through `_CompiledStatistics`, which replaces
    aiortc's `StreamStatistics` for the media SSRC), finds the lost packets as aiortc's
    `NackGenerator` does (one NACK per loss event, not per packet) and forwards the packet. This
    class handles what reaches Python: the packets aiortc routes itself (an SSRC's first, after
    which `_DirectIngest` takes the SSRC over in C), RTX retransmissions (unwrapped here, with
    aiortc's statistics for the RTX SSRC), and the stream's events: a gap (a NACK) and the end of
    a video frame, which feeds aiortc's estimator, one per connection (`_SharedEstimate`), with
    every byte since its last call, at most every `ESTIMATE_EVERY_MS` (the connection's compiled
    `EstimateFeed` keeps the time and the bytes, so Python is called only then), instead of once
    per packet:
    an estimator group is a burst of packets sent within 5 ms, which a paced frame is, so the
    arrival deltas it compares are nearly the same, at a fraction of the cost. The few RTCP
    packets it sends (NACK, REMB) go out in tasks of their own.
    """

    def __init__(self, receiver: RTCRtpReceiver, stream: Stream, ingest: _DirectIngest) -> None:
        self._receiver = receiver
        self._stream = stream
        self._ingest = ingest
        # The receiver's own dicts, filled by `receive()` and read by its RTCP loop.
        self._codecs: dict[int, Any] = _require_instance_attribute(receiver, _CODECS)
        self._rtx_ssrcs: dict[int, int] = _require_instance_attribute(receiver, _RTX_SSRC)
        self._streams: dict[int, Any] = _require_instance_attribute(receiver, _REMOTE_STREAMS)
        self._nacking = _require_instance_attribute(receiver, _NACK_GENERATOR) is not None
        estimator: RemoteBitrateEstimator | None = _require_instance_attribute(
            receiver, _BITRATE_ESTIMATOR
        )
        self._estimate_with: _SharedEstimate | None = None
        if estimator is not None:
            shared = _ESTIMATES.get(receiver.transport)
            if shared is None:
                shared = _ESTIMATES[receiver.transport] = _SharedEstimate(estimator)
            self._estimate_with = shared
        _require_instance_attribute(receiver, _RTCP_SSRC)
        _require_instance_attribute(receiver, "_enabled")
        self._tasks: set[asyncio.Task[None]] = set()
        self.media_ssrc: int | None = None
        stream.on_gap = self._send_nack if self._nacking else None
        stream.on_frame = self._estimate if self._estimate_with is not None else None
        stream.feed = self._estimate_with.feed if self._estimate_with is not None else None

    async def handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        """aiortc's entry point: its own route, until `_DirectIngest` takes the SSRC over."""
        self.handle(packet, arrival_time_ms)

    def handle(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        receiver = self._receiver
        if not receiver._enabled:
            return
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        ssrc = packet.ssrc
        stream = self._stream
        retransmission = codec.mimeType[-4:].lower() == "/rtx"
        if retransmission:
            statistics = self._streams.get(ssrc)
            if statistics is None:
                statistics = self._streams[ssrc] = StreamStatistics(codec.clockRate)
            statistics.add(packet)
            media_ssrc = self._rtx_ssrcs.get(ssrc)
            apt = codec.parameters.get("apt")
            if media_ssrc is None or len(packet.payload) < 2 or apt not in self._codecs:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=media_ssrc)
            ssrc = media_ssrc
            codec = self._codecs[apt]
        if ssrc != stream.ssrc or ssrc != self.media_ssrc:
            self._start(ssrc, codec.clockRate)
        self.media_ssrc = ssrc
        extensions = packet.extensions
        level = extensions.audio_level
        try:
            self._receive(stream, packet, ssrc, level, arrival_time_ms, retransmission)
        except Exception:
            # Raised into aiortc's DTLS task, it would close the publisher's connection.
            logger.exception("a publisher's packet was not handled in full")

    @staticmethod
    def _receive(
        stream: Stream,
        packet: RtpPacket,
        ssrc: int,
        level: tuple[bool, int] | None,
        arrival_time_ms: int,
        retransmission: bool,
    ) -> None:
        extensions = packet.extensions
        stream.receive(
            packet.payload_type,
            packet.marker,
            packet.sequence_number,
            packet.timestamp,
            ssrc,
            packet.payload,
            packet.padding_size,
            -1 if extensions.abs_send_time is None else extensions.abs_send_time,
            -1 if level is None else (0x80 if level[0] else 0) | (level[1] & 0x7F),
            arrival_time_ms,
            retransmission,
        )

    def _start(self, ssrc: int, clock_rate: int) -> None:
        """A new media SSRC: statistics and NACKs start again, and its next packets go to C."""
        self._stream.restart(ssrc, clock_rate, self._nacking)
        self._streams[ssrc] = _CompiledStatistics(self._stream)
        if self._estimate_with is not None:
            # Every REMB names it: the feed calls Python for whichever stream's frame is due.
            self._estimate_with.ssrcs.add(ssrc)
        self._ingest.route(ssrc, self._receiver, self._codecs, self._stream)

    def _send_nack(self, lost: list[int]) -> None:
        ssrc = self._stream.ssrc
        if ssrc is not None:
            self._spawn(self._receiver._send_rtcp_nack(ssrc, lost))

    def _estimate(self, abs_send_time: int, arrival_time_ms: int, octets: int, ssrc: int) -> None:
        shared = self._estimate_with
        if shared is None:  # not set as the stream's on_frame then
            return
        shared.ssrcs.add(ssrc)
        bitrate = shared.add(abs_send_time, arrival_time_ms, octets, ssrc)
        rtcp_ssrc: int | None = getattr(self._receiver, _RTCP_SSRC)
        if bitrate is not None and rtcp_ssrc is not None:
            # Every stream of the connection: the estimator names only those it was fed lately.
            fci = pack_remb_fci(bitrate, sorted(shared.ssrcs))
            self._spawn(
                self._receiver._send_rtcp(
                    RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=fci)
                )
            )

    def _spawn(self, coroutine: Coroutine[object, object, None]) -> None:
        # One RTCP packet each, done at once: references kept only so none is collected mid-way.
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _DirectIngest:
    """A DTLS transport's SRTP media for tapped receivers, taken in by the compiled `Ingest` as
    each datagram arrives.

    aioice queues every datagram; the DTLS transport's task takes each from the queue, then
    unprotects, parses and routes it, and awaits the receiver: a task wakeup and a chain of
    coroutines per packet. Once aiortc has routed an SSRC to a tapped receiver (its first packet
    takes aiortc's route), `route` hands that SSRC to the compiled ingest, which unprotects,
    parses and gives each of its datagrams to the receiver's `Stream` with no Python at all.
    Everything else (DTLS, SRTCP, RTX, unrouted SSRCs) is queued as before. The datagrams taken
    in are added to the transport's counters when its statistics are read.
    """

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._extensions: Any = _require_instance_attribute(dtls, "_rtp_header_extensions_map")
        _require_instance_attribute(self._extensions, _EXTENSION_IDS)
        self._srtp: pylibsrtp.Session | None = None
        _require_instance_attribute(dtls, "_rx_srtp")
        _require_instance_attribute(dtls, _RX_BYTES)
        _require_instance_attribute(dtls, _RX_PACKETS)
        connection = _require_instance_attribute(dtls.transport, "_connection")
        # StunProtocol calls `self.receiver.data_received`: an instance attribute replaces it.
        self.compiled = Ingest(connection.data_received)
        connection.data_received = self.compiled.data_received
        get_stats = dtls._get_stats

        def counted_stats() -> Any:
            self.count()
            return get_stats()

        dtls._get_stats = counted_stats  # type: ignore[method-assign]

    def route(
        self, ssrc: int, receiver: RTCRtpReceiver, codecs: dict[int, Any], stream: Stream
    ) -> None:
        """Take in the SSRC's datagrams for `stream` from now on."""
        srtp = self._dtls._rx_srtp
        if srtp is None:
            return
        if srtp is not self._srtp:
            self._srtp = srtp
            context = int(srtp_binding.ffi.cast("uintptr_t", srtp._srtp[0]))
            self.compiled.use_keys(srtp, context, _SRTP_UNPROTECT)
        ids = getattr(self._extensions, _EXTENSION_IDS)
        self.compiled.use_extensions(ids.abs_send_time or 0, ids.audio_level or 0)
        self.compiled.route(ssrc, receiver, codecs, stream)

    def count(self) -> None:
        """Add what was taken in to the transport's own counters (its `getStats()`)."""
        octets, packets = self.compiled.take_counts()
        dtls = self._dtls
        setattr(dtls, _RX_BYTES, getattr(dtls, _RX_BYTES) + octets)
        setattr(dtls, _RX_PACKETS, getattr(dtls, _RX_PACKETS) + packets)


# A connection's ingest lives on its DTLS transport, not in a registry: it refers to the transport
# (and its receivers do), so a weak-keyed registry would keep every closed connection alive.
_INGEST = "_homeroom_ingest"


def _packet_sink(sink: PacketSink) -> Callable[..., None]:
    def handle(
        payload_type: int,
        marker: int,
        sequence: int,
        timestamp: int,
        ssrc: int,
        payload: bytes,
        padding: int,
        abs_send_time: int,
        level: int,
    ) -> None:
        packet = RtpPacket(payload_type, marker, sequence, timestamp, ssrc, payload)
        packet.padding_size = padding
        if abs_send_time >= 0:
            packet.extensions.abs_send_time = abs_send_time
        if level >= 0:
            packet.extensions.audio_level = (level & 0x80 == 0x80, level & 0x7F)
        sink(packet)

    return handle


def tap_receiver_packets(receiver: RTCRtpReceiver, sink: Stream | PacketSink) -> ReceiverTap:
    """Give the receiver's media packets to `sink` as they arrive; nothing is reassembled.

    `sink` is a compiled `Stream` (the relay's forwarding: no Python per packet once aiortc has
    routed the SSRC), or a callable given each packet as an `RtpPacket` (tests and tools). The
    receiver's per-packet handler is replaced by `_LeanReceivePath`: statistics for receiver
    reports, RTX unwrapping, NACKs and REMB stay; depayloading, the jitter buffer and the decoder
    go; once aiortc has routed an SSRC to the receiver, its packets skip aiortc's queue and tasks
    (`_DirectIngest`). aiortc's receiver keeps sending the publisher its RTCP (receiver reports,
    PLIs). Call it before `receive()` starts the receiver.
    """
    if _require_instance_attribute(receiver, _DECODER_THREAD) is not None:
        raise RuntimeError("tap_receiver_packets() must run before the receiver starts")
    _require_instance_attribute(receiver, _DECODER_QUEUE)
    if isinstance(sink, Stream):
        stream = sink
    else:
        stream = Stream(_require_instance_attribute(receiver, _KIND) == "video")
        stream.on_packet = _packet_sink(sink)
    dtls = receiver.transport
    ingest: _DirectIngest | None = getattr(dtls, _INGEST, None)
    if ingest is None:
        ingest = _DirectIngest(dtls)
        setattr(dtls, _INGEST, ingest)
    path = _LeanReceivePath(receiver, stream, ingest)
    # An instance attribute shadows the method the DTLS transport calls for each routed packet.
    receiver._handle_rtp_packet = path.handle_rtp_packet  # type: ignore[method-assign]
    # No frame is ever queued: the decoder thread reads the stand-in's None and ends at once.
    setattr(receiver, _DECODER_QUEUE, _FrameTap(lambda *_: None, None))
    return ReceiverTap(receiver, path)


def read_in_batches(pc: RTCPeerConnection) -> int:
    """Read the connection's sockets with `read_datagrams` (compiled) instead of asyncio's
    transport: all the datagrams waiting on a socket in one `recvmmsg`, and RTP and RTCP handed to
    aioice's `Connection.data_received` without its STUN parse. Call it once the connection is
    connected (aioice has made its sockets by then). Returns how many sockets it took over.

    Each socket stays its datagram transport's: sending, closing (which removes the reader) and
    errors (`error_received`) go through it as before. Only asyncio's selector loop is taken over;
    with another loop nothing changes.
    """
    loop = asyncio.get_running_loop()
    if not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return 0
    taken = 0
    for dtls in {transceiver.receiver.transport for transceiver in pc.getTransceivers()}:
        connection = _require_instance_attribute(dtls.transport, "_connection")
        for protocol in _require_instance_attribute(connection, "_protocols"):
            datagrams = getattr(protocol, "transport", None)
            candidate = getattr(protocol, "local_candidate", None)
            if (
                not isinstance(
                    datagrams,
                    asyncio.selector_events._SelectorDatagramTransport,  # type: ignore[attr-defined]
                )
                or datagrams.is_closing()
                or candidate is None
            ):
                continue
            fd = datagrams.get_extra_info("socket").fileno()
            # Replaces the transport's own reader (`_read_ready`) on the same selector key.
            loop._add_reader(  # type: ignore[attr-defined]
                fd, read_datagrams, fd, protocol, connection, candidate.component
            )
            taken += 1
    return taken


class _ConnectionReports:
    """The RTCP sender reports of one connection's forwarding senders, sent together.

    aiortc gives each sender a task that wakes every 0.5-1.5 s to send its report alone: a
    subscriber with ten slots cost the relay ten wakeups, ten SRTCP protections and ten datagrams
    a second, a tenth of a gallery relay's time. As a browser does, one task per connection (one
    DTLS transport, bundled) sends every sender's report in one compound packet, at the same
    randomised interval. A sender that has sent nothing reports nothing: a class's spare slots are
    most of its senders.
    """

    def __init__(self, transport: RTCDtlsTransport) -> None:
        # Weak: the transport is this object's key in _CONNECTION_REPORTS.
        self._transport = weakref.ref(transport)
        self._legs: dict[int, SenderLeg] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, leg: SenderLeg) -> None:
        self._legs[id(leg)] = leg
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def discard(self, leg: SenderLeg) -> None:
        self._legs.pop(id(leg), None)
        if not self._legs and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            # RFC 3550's randomised interval, as aiortc's senders use.
            await asyncio.sleep(0.5 + random.random())  # noqa: S311 -- timing, not a secret
            try:
                await self.send()
            except Exception:
                # One bad round must not end the connection's reports for good.
                logger.exception("RTCP sender reports of a connection failed")

    async def send(self) -> None:
        """Send the reports of every sender that has sent something, ten to a datagram."""
        transport = self._transport()
        if transport is None:
            return
        reports = [r for leg in list(self._legs.values()) if (r := leg.sender_report())]
        for start in range(0, len(reports), REPORTS_PER_DATAGRAM):
            batch = reports[start : start + REPORTS_PER_DATAGRAM]
            payload = b"".join(bytes(report) for report, _ in batch)
            payload += bytes(RtcpSdesPacket(chunks=[source for _, source in batch]))
            try:
                await transport._send_rtp(payload)
            except ConnectionError:
                return


_CONNECTION_REPORTS: weakref.WeakKeyDictionary[RTCDtlsTransport, _ConnectionReports] = (
    weakref.WeakKeyDictionary()
)


class SenderLeg:
    """An `RTCRtpSender` whose RTP comes from the relay's fan-out loop, not from its own RTP loop.

    `connect(slot)` points a compiled slot (`media_relay._fanout.Slot`) at the sender's transport:
    the libsrtp session of its DTLS transport and a duplicate of the socket of its nominated ICE
    candidate pair, so each packet is SRTP-protected and sent without Python. A TURN-relayed pair
    has no socket of its own: the slot then hands packets to a Python function that protects and
    sends them through aioice. The slot's counters are written into the sender whenever a report or
    `getStats()` is made (`pull_counters`), so its RTCP sender reports (A/V sync in browsers) and
    its statistics stay right. The sender's own RTP loop
    must be given a track that never yields. Its RTCP sender reports go out with those of the
    other senders of its connection, in one compound packet (`_ConnectionReports`), and none until
    the slot has sent a packet: a class's spare slots are most of its senders, and each one's
    report every second (built, SRTCP-protected and sent in Python) would say only that nothing
    was sent.
    """

    def __init__(self, sender: RTCRtpSender) -> None:
        self._sender = sender
        self._send: Callable[[bytes], bool] | None = None
        self._slot: FanoutSlot | None = None
        for name in (_RTCP_STARTED, _RTCP_EXITED, _CNAME, _LSR, _LSR_TIME, _PACKET_COUNT):
            _require_instance_attribute(sender, name)
        sender._run_rtcp = self._run_rtcp  # type: ignore[method-assign]
        get_stats = sender.getStats

        async def current_stats() -> RTCStatsReport:
            self.pull_counters()
            return await get_stats()

        sender.getStats = current_stats  # type: ignore[method-assign]

    async def _run_rtcp(self) -> None:
        """The sender's RTCP loop: its reports go with its connection's, then a BYE at the end."""
        sender = self._sender
        getattr(sender, _RTCP_STARTED).set()
        reports = _CONNECTION_REPORTS.get(sender.transport)
        if reports is None:
            reports = _CONNECTION_REPORTS[sender.transport] = _ConnectionReports(sender.transport)
        reports.add(self)
        try:
            await asyncio.Future()  # until stop() cancels the loop
        except asyncio.CancelledError:
            pass
        finally:
            reports.discard(self)
        # The BYE always goes: it is what tells the browser the stream ended.
        await sender._send_rtcp([RtcpByePacket(sources=[self.ssrc])])
        getattr(sender, _RTCP_EXITED).set()

    def sender_report(self) -> tuple[RtcpSrPacket, RtcpSourceInfo] | None:
        """The sender's report and CNAME now, noted for round-trip times; None before it sent."""
        self.pull_counters()
        sender = self._sender
        packets: int = getattr(sender, _PACKET_COUNT)
        if not packets:
            return None
        ntp_timestamp: int = getattr(sender, _NTP_TIMESTAMP)
        report = RtcpSrPacket(
            ssrc=self.ssrc,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=ntp_timestamp,
                rtp_timestamp=getattr(sender, _RTP_TIMESTAMP),
                packet_count=packets & 0xFFFFFFFF,
                octet_count=getattr(sender, _OCTET_COUNT) & 0xFFFFFFFF,
            ),
        )
        setattr(sender, _LSR, (ntp_timestamp >> 16) & 0xFFFFFFFF)
        setattr(sender, _LSR_TIME, time.time())
        cname: str | None = getattr(sender, _CNAME)
        items = [(1, cname.encode("utf8"))] if cname is not None else []
        return report, RtcpSourceInfo(ssrc=self.ssrc, items=items)

    @property
    def ssrc(self) -> int:
        ssrc: int = _require_instance_attribute(self._sender, "_ssrc")
        return ssrc

    @property
    def rtx_ssrc(self) -> int:
        ssrc: int = _require_instance_attribute(self._sender, "_rtx_ssrc")
        return ssrc

    def connect(self, slot: FanoutSlot) -> bool:
        """Send the slot's packets on this sender's transport; False when it is not connected."""
        send = self._connect()
        if send is None:
            return False
        self.count_from(slot)
        transport = self._sender.transport
        srtp = transport._tx_srtp
        pair = transport.transport._connection._nominated[1]
        # asyncio's UDP transport has a socket; aioice's TURN transport has none of its own.
        sock = pair.protocol.transport.get_extra_info("socket")
        if sock is not None and sock.type == socket.SOCK_DGRAM:
            ffi = srtp_binding.ffi
            host, port = pair.remote_addr[:2]
            try:
                slot.connect_socket(
                    srtp,
                    int(ffi.cast("uintptr_t", srtp._srtp[0])),
                    int(ffi.cast("uintptr_t", ffi.addressof(srtp_binding.lib, "srtp_protect"))),
                    sock.fileno(),
                    host,
                    port,
                )
                return True
            except ValueError:  # an address the socket layer needs more for (a scoped IPv6)
                pass
        slot.connect_callable(send)
        return True

    def count_from(self, slot: FanoutSlot) -> None:
        """Take what the sender says it sent from `slot`'s counters (`connect` does)."""
        self._slot = slot

    def pull_counters(self) -> None:
        """Set what the sender's RTCP sender reports and `getStats()` say it sent from its slot's
        counters: read when a report or the statistics are made, not on a timer."""
        slot = self._slot
        if slot is None:
            return
        packets, octets, _, _, _, rtp_timestamp, ntp_timestamp, _ = slot.counters()
        if not packets:
            return
        sender = self._sender
        setattr(sender, _PACKET_COUNT, packets)
        setattr(sender, _OCTET_COUNT, octets)
        setattr(sender, _RTP_TIMESTAMP, rtp_timestamp)
        setattr(sender, _NTP_TIMESTAMP, ntp_timestamp)

    def resend(self, packet: bytes) -> bool:
        """Send a retransmission (unprotected bytes) the Python way: NACKs are rare."""
        send = self._send or self._connect()
        return send is not None and send(packet)

    def _connect(self) -> Callable[[bytes], bool] | None:
        transport = self._sender.transport
        if _require_instance_attribute(transport, "_state") is not DtlsState.CONNECTED:
            return None
        srtp = _require_instance_attribute(transport, "_tx_srtp")
        connection = _require_instance_attribute(transport.transport, "_connection")
        pair = _require_instance_attribute(connection, "_nominated").get(1)
        if srtp is None or pair is None:
            return None
        protect = srtp.protect
        datagrams = pair.protocol.transport
        address = pair.remote_addr

        def send(packet: bytes) -> bool:
            # Checked per packet (one attribute): a closed transport's socket must not be used.
            if transport._state is not DtlsState.CONNECTED:
                self._send = None
                return False
            try:
                datagrams.sendto(protect(packet), address)
            except (ValueError, pylibsrtp.Error):
                # A packet pylibsrtp will not protect (over its 1,356-byte limit) is this
                # subscriber's loss alone; the fan-out counts it as a send error.
                return False
            return True

        self._send = send
        return send


def hook_sender_start(
    sender: RTCRtpSender, on_start: Callable[[RTCRtpSendParameters], None]
) -> None:
    """Call `on_start(parameters)` when the connected peer connection starts the sender."""
    original = sender.send

    async def send(parameters: RTCRtpSendParameters) -> None:
        await original(parameters)
        on_start(parameters)

    sender.send = send  # type: ignore[method-assign]


def hook_retransmissions(sender: RTCRtpSender, on_nack: Callable[[int], object]) -> None:
    """Call `on_nack(sequence_number)` for each packet the remote peer reports lost.

    Replaces aiortc's own retransmission, which serves packets from its RTP loop's history.
    """

    async def retransmit(sequence_number: int) -> None:
        on_nack(sequence_number)

    sender._retransmit = retransmit  # type: ignore[method-assign]


def hook_bandwidth_estimates(
    sender: RTCRtpSender, on_estimate: Callable[[int, Sequence[int]], None]
) -> None:
    """Call `on_estimate(bits_per_second, ssrcs)` for each REMB the remote peer sends naming the
    sender (`ssrcs`: every stream it names).

    A browser's REMB is its estimate of what its whole downlink from the relay can carry (it names
    every SSRC it receives), which the relay uses to choose simulcast layers. aiortc itself only
    passes it to an encoder, which a forwarding sender does not have.
    """
    original = sender._handle_rtcp_packet
    ssrc = _require_instance_attribute(sender, "_ssrc")

    async def handle(packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if ssrc in ssrcs:
                on_estimate(bitrate, ssrcs)
            return
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]
