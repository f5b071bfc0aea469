"""Every aiortc internal the relay relies on, checked against the pinned aiortc (1.16.0).

If one of these fails after an upgrade, `media_relay/aiortc_internals.py` needs rework before the
relay can forward again.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import types
from collections.abc import AsyncIterator

import av
import pytest
import pytest_asyncio
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpByePacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
)
from pylibsrtp import Policy, Session
from pylibsrtp import _binding as srtp_binding

from media_relay import aiortc_internals
from media_relay._fanout import Slot
from media_relay._fanout import forward as fanout_forward
from media_relay.aiortc_internals import (
    AiortcChangedError,
    SenderLeg,
    hook_keyframe_requests,
    hook_retransmissions,
    hook_sender_start,
    tap_receiver,
    tap_receiver_packets,
)

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
MEDIA_SSRC = 1234


@pytest_asyncio.fixture
async def pc() -> AsyncIterator[RTCPeerConnection]:
    connection = RTCPeerConnection()
    yield connection
    await connection.close()


def _receiver(pc: RTCPeerConnection, kind: str) -> RTCRtpReceiver:
    receiver = pc.addTransceiver(kind, direction="recvonly").receiver
    # What setRemoteDescription gives a receiving transceiver: the track its decoder fills.
    receiver._track = RemoteStreamTrack(kind=kind)
    return receiver


def _frames_sink() -> tuple[list[tuple[str, bytes, int]], aiortc_internals.EncodedFrameSink]:
    frames: list[tuple[str, bytes, int]] = []
    return frames, lambda mime, data, timestamp: frames.append((mime, data, timestamp))


async def _feed(receiver: RTCRtpReceiver, codec: RTCRtpCodecParameters, frames: list[bytes]):
    """Send each frame as RTP (VP8 packetised as a sender would), 3000 ticks apart."""
    sequence = 100
    for index, frame in enumerate(frames):
        payloads = Vp8Encoder._packetize(frame, index) if codec is VP8 else [frame]
        for position, payload in enumerate(payloads):
            packet = RtpPacket(
                payload_type=codec.payloadType or 0,
                sequence_number=sequence,
                timestamp=50_000 + 3000 * index,
                ssrc=MEDIA_SSRC,
                payload=payload,
            )
            packet.marker = int(position == len(payloads) - 1)
            await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
            sequence += 1


@pytest.mark.asyncio
async def test_a_tapped_receiver_hands_complete_encoded_frames_to_the_sink(pc):
    """A frame reaches the sink whole, once the next frame starts, with its timestamp from 0."""
    receiver = _receiver(pc, "video")
    frames, sink = _frames_sink()
    tap = tap_receiver(receiver, "video", sink)
    await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
    big_keyframe = b"\x10" + bytes(range(256)) * 8  # several RTP packets
    await _feed(receiver, VP8, [big_keyframe, b"\x11delta", b"\x11next"])
    assert frames == [("video/VP8", big_keyframe, 0), ("video/VP8", b"\x11delta", 3000)]
    assert tap.media_ssrc == MEDIA_SSRC
    await receiver.stop()


@pytest.mark.asyncio
async def test_a_tapped_receiver_starts_no_decoding_and_still_stops(pc):
    """The decoder thread `receive()` starts ends at once; stopping the receiver does not hang."""
    receiver = _receiver(pc, "video")
    tap_receiver(receiver, "video", lambda *_: None)
    await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
    thread = receiver._RTCRtpReceiver__decoder_thread  # type: ignore[attr-defined]
    await asyncio.to_thread(thread.join, 2)
    assert not thread.is_alive()
    await asyncio.wait_for(receiver.stop(), timeout=2)


@pytest.mark.asyncio
async def test_a_tapped_audio_receiver_hands_each_opus_frame_on_without_prefetch(pc):
    """aiortc would hold four audio frames back; the tap hands each on as soon as it is complete."""
    receiver = _receiver(pc, "audio")
    frames, sink = _frames_sink()
    tap_receiver(receiver, "audio", sink)
    await receiver.receive(RTCRtpReceiveParameters(codecs=[OPUS]))
    await _feed(receiver, OPUS, [b"\x01", b"\x02"])
    assert frames == [("audio/opus", b"\x01", 0)]
    await receiver.stop()


@pytest.mark.asyncio
async def test_a_passthrough_tap_also_lets_the_receiver_decode(pc):
    """Tests observe encoded frames and still get decoded ones from the track."""
    receiver = _receiver(pc, "audio")
    frames, sink = _frames_sink()
    tap_receiver(receiver, "audio", sink, passthrough=True)
    await receiver.receive(RTCRtpReceiveParameters(codecs=[OPUS]))
    silence = bytes([0xF8, 0xFF, 0xFE])  # an Opus packet of 20 ms of silence
    await _feed(receiver, OPUS, [silence, silence])
    decoded = await asyncio.wait_for(receiver.track.recv(), timeout=2)
    assert isinstance(decoded, av.AudioFrame)
    assert len(frames) == 1
    await receiver.stop()


@pytest.mark.asyncio
async def test_the_tap_must_come_before_the_receiver_starts(pc):
    receiver = _receiver(pc, "video")
    await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
    with pytest.raises(RuntimeError, match="before the receiver starts"):
        tap_receiver(receiver, "video", lambda *_: None)
    await receiver.stop()


@pytest.mark.asyncio
async def test_a_keyframe_request_sends_the_publisher_a_pli_for_its_media_ssrc(pc, monkeypatch):
    receiver = _receiver(pc, "video")
    tap = tap_receiver(receiver, "video", lambda *_: None)
    sent: list[object] = []

    async def capture(packet: object) -> None:
        sent.append(packet)

    monkeypatch.setattr(receiver, "_send_rtcp", capture)
    assert await tap.request_keyframe() is False  # no media yet: no SSRC to name
    await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
    await _feed(receiver, VP8, [b"\x10key"])
    assert await tap.request_keyframe() is True
    [pli] = sent
    assert isinstance(pli, RtcpPsfbPacket)
    assert (pli.fmt, pli.media_ssrc) == (RTCP_PSFB_PLI, MEDIA_SSRC)
    await receiver.stop()


@pytest.mark.parametrize("fmt", [RTCP_PSFB_PLI, RTCP_PSFB_FIR])
@pytest.mark.asyncio
async def test_a_subscriber_keyframe_request_reaches_the_hook_instead_of_the_encoder(pc, fmt):
    sender = pc.addTransceiver("video", direction="sendonly").sender
    requests: list[bool] = []
    hook_keyframe_requests(sender, lambda: requests.append(True))
    await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=sender._ssrc))
    assert requests == [True]
    assert sender._RTCRtpSender__force_keyframe is False


@pytest.mark.asyncio
async def test_a_chained_hook_also_forces_the_encoders_next_keyframe(pc):
    sender = pc.addTransceiver("video", direction="sendonly").sender
    requests: list[bool] = []
    hook_keyframe_requests(sender, lambda: requests.append(True), chain=True)
    await sender._handle_rtcp_packet(
        RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc)
    )
    assert requests == [True]
    assert sender._RTCRtpSender__force_keyframe is True


@pytest.mark.asyncio
async def test_a_packet_tapped_receiver_hands_on_each_packet_at_once_and_decodes_nothing(pc):
    """No frame is reassembled: each packet reaches the sink as it arrives, RTP payload intact."""
    receiver = _receiver(pc, "video")
    packets: list[RtpPacket] = []
    tap = tap_receiver_packets(receiver, packets.append)
    await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
    await _feed(receiver, VP8, [b"\x10" + bytes(3000)])  # one keyframe, three packets
    assert [p.sequence_number for p in packets] == [100, 101, 102]
    assert packets[0].payload.startswith(b"\x90\x80")  # the VP8 payload descriptor, kept
    assert [p.marker for p in packets] == [0, 0, 1]
    assert tap.media_ssrc == MEDIA_SSRC
    thread = receiver._RTCRtpReceiver__decoder_thread  # type: ignore[attr-defined]
    await asyncio.to_thread(thread.join, 2)
    assert not thread.is_alive()
    await asyncio.wait_for(receiver.stop(), timeout=2)


@pytest.mark.asyncio
async def test_the_packet_tap_must_come_before_the_receiver_starts(pc):
    receiver = _receiver(pc, "audio")
    await receiver.receive(RTCRtpReceiveParameters(codecs=[OPUS]))
    with pytest.raises(RuntimeError, match="before the receiver starts"):
        tap_receiver_packets(receiver, lambda _packet: None)
    await receiver.stop()


@pytest.mark.asyncio
async def test_a_subscriber_s_nack_reaches_the_hook_for_each_lost_packet(pc):
    sender = pc.addTransceiver("video", direction="sendonly").sender
    lost: list[int] = []
    hook_retransmissions(sender, lost.append)
    await sender._handle_rtcp_packet(
        RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=sender._ssrc, lost=[7, 9])
    )
    assert lost == [7, 9]


@pytest.mark.asyncio
async def test_the_start_hook_gets_the_negotiated_send_parameters(pc, monkeypatch):
    sender = pc.addTransceiver("video", direction="sendonly").sender
    started: list[RTCRtpSendParameters] = []

    async def send(parameters: RTCRtpSendParameters) -> None:
        started.append(parameters)  # what aiortc's own send would be given

    monkeypatch.setattr(sender, "send", send)
    hook_sender_start(sender, started.append)
    parameters = RTCRtpSendParameters(codecs=[VP8], muxId="3")
    await sender.send(parameters)
    assert started == [parameters, parameters]


@pytest.mark.asyncio
async def test_a_leg_connects_no_slot_before_its_transport_is_connected(pc):
    sender = pc.addTransceiver("video", direction="sendonly").sender
    leg = SenderLeg(sender)
    slot = Slot(video=True)
    assert leg.connect(slot) is False
    assert leg.resend(b"\x80" + bytes(20)) is False
    assert (leg.ssrc, leg.rtx_ssrc) == (sender._ssrc, sender._rtx_ssrc)


@pytest.mark.asyncio
async def test_a_legs_report_is_what_the_senders_stats_and_sender_reports_say(pc):
    sender = pc.addTransceiver("video", direction="sendonly").sender
    SenderLeg(sender).count_from(
        _Counters(packets=12, octets=3400, rtp_timestamp=777, ntp_timestamp=1 << 40)
    )
    [stats] = [s for s in (await sender.getStats()).values() if s.type == "outbound-rtp"]
    assert (stats.packetsSent, stats.bytesSent) == (12, 3400)
    assert sender._RTCRtpSender__rtp_timestamp == 777
    assert sender._RTCRtpSender__ntp_timestamp == 1 << 40


class _Counters:
    """A slot's counters as `Slot.counters()` gives them, set by the test."""

    def __init__(self, packets: int, octets: int, rtp_timestamp: int, ntp_timestamp: int) -> None:
        self._counters = (packets, octets, 0, 0, 0, rtp_timestamp, ntp_timestamp, -1)

    def counters(self) -> tuple[int, int, int, int, int, int, int, int]:
        return self._counters

    def connect_socket(self, *_: object) -> None:
        raise NotImplementedError

    def connect_callable(self, *_: object) -> None:
        raise NotImplementedError


class _CapturingTransport:
    """Stands in for a connected DTLS transport: keeps each RTCP datagram it is given."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)


@pytest.mark.asyncio
async def test_a_connections_sender_reports_go_together_ten_to_a_datagram(pc):
    """One compound packet carries the reports of the connection's senders that have sent
    something (a spare one says nothing), each with its CNAME, ten to a datagram; each report is
    noted for round-trip times as aiortc's would be."""
    legs = [SenderLeg(pc.addTransceiver("video", direction="sendonly").sender) for _ in range(13)]
    for index, leg in enumerate(legs):
        setattr(leg._sender, aiortc_internals._CNAME, "relay")  # what send() sets
        if index < 12:
            leg.count_from(_Counters(10 + index, 1000 * index, index, (5 << 32) + index))
    transport = _CapturingTransport()
    reports = aiortc_internals._ConnectionReports(transport)  # type: ignore[arg-type]
    for leg in legs:
        reports.add(leg)
    await reports.send()
    datagrams = [RtcpPacket.parse(data) for data in transport.sent]
    assert [len(packets) for packets in datagrams] == [11, 3]
    sender_reports = [p for packets in datagrams for p in packets if isinstance(p, RtcpSrPacket)]
    assert [p.ssrc for p in sender_reports] == [leg.ssrc for leg in legs[:12]]
    assert [p.sender_info.packet_count for p in sender_reports] == list(range(10, 22))
    assert sender_reports[3].sender_info.rtp_timestamp == 3
    descriptions = [p for packets in datagrams for p in packets if isinstance(p, RtcpSdesPacket)]
    assert descriptions == [packets[-1] for packets in datagrams]
    assert [[chunk.ssrc for chunk in p.chunks] for p in descriptions] == [
        [leg.ssrc for leg in legs[:10]],
        [leg.ssrc for leg in legs[10:12]],
    ]
    assert {item for p in descriptions for chunk in p.chunks for item in chunk.items} == {
        (1, b"relay")
    }
    assert getattr(legs[2]._sender, aiortc_internals._LSR) == (((5 << 32) + 2) >> 16) & 0xFFFFFFFF
    for leg in legs:
        reports.discard(leg)
    assert reports._task is None


@pytest.mark.asyncio
async def test_a_failed_round_of_reports_is_logged_and_the_next_round_goes(pc, monkeypatch, caplog):
    """One round's failure (here a report that cannot be built) must not end the connection's
    sender reports for the rest of the lesson."""
    monkeypatch.setattr(aiortc_internals, "random", types.SimpleNamespace(random=lambda: 0.0))
    leg = SenderLeg(pc.addTransceiver("video", direction="sendonly").sender)
    leg.count_from(_Counters(5, 500, 0, 1 << 32))
    build = leg.sender_report
    calls: list[int] = []

    def fail_once() -> tuple[RtcpSrPacket, RtcpSourceInfo] | None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise struct.error("out of range")
        return build()

    leg.sender_report = fail_once  # type: ignore[method-assign]
    transport = _CapturingTransport()
    reports = aiortc_internals._ConnectionReports(transport)  # type: ignore[arg-type]
    reports.add(leg)
    for _ in range(40):
        if transport.sent:
            break
        await asyncio.sleep(0.1)
    reports.discard(leg)
    assert len(calls) >= 2
    [packets, *_] = [RtcpPacket.parse(data) for data in transport.sent]
    assert isinstance(packets[0], RtcpSrPacket)
    assert "RTCP sender reports of a connection failed" in caplog.text


@pytest.mark.asyncio
async def test_a_stopped_leg_leaves_its_connections_reports_with_a_bye(pc):
    """The sender's RTCP loop joins its connection's reports while it runs; stop() ends it with
    the BYE that tells the browser the stream ended, and the connection's task with it."""
    sender = pc.addTransceiver("video", direction="sendonly").sender
    leg = SenderLeg(sender)
    sent: list[list[object]] = []

    async def send_rtcp(packets: list[object]) -> None:
        sent.append(packets)

    sender._send_rtcp = send_rtcp
    loop = asyncio.ensure_future(sender._run_rtcp())
    await sender._RTCRtpSender__rtcp_started.wait()
    reports = aiortc_internals._CONNECTION_REPORTS[sender.transport]
    assert list(reports._legs.values()) == [leg]
    assert reports._task is not None
    loop.cancel()
    await asyncio.wait_for(sender._RTCRtpSender__rtcp_exited.wait(), 2)
    [[bye]] = sent
    assert isinstance(bye, RtcpByePacket)
    assert bye.sources == [leg.ssrc]
    assert not reports._legs
    assert reports._task is None


@pytest.mark.asyncio
async def test_a_connected_leg_sends_the_slots_packets_itself_on_the_ice_socket():
    """SRTP with the DTLS transport's session, on the nominated pair's socket: the peer gets it."""
    sending, receiving = RTCPeerConnection(), RTCPeerConnection()
    try:
        transceiver = sending.addTransceiver("audio", direction="sendonly")
        started: list[RTCRtpSendParameters] = []
        hook_sender_start(transceiver.sender, started.append)
        await sending.setLocalDescription(await sending.createOffer())
        await receiving.setRemoteDescription(sending.localDescription)
        await receiving.setLocalDescription(await receiving.createAnswer())
        await sending.setRemoteDescription(receiving.localDescription)
        for _ in range(100):
            if started and receiving.connectionState == "connected":
                break
            await asyncio.sleep(0.05)
        [parameters] = started
        leg = SenderLeg(transceiver.sender)
        slot = Slot(video=False)
        template = b"\x80\x00\x00\x00" + bytes(4) + leg.ssrc.to_bytes(4, "big")
        slot.configure(template, parameters.codecs[0].payloadType or 0, 0, 0)
        assert leg.connect(slot) is True
        assert slot.mode == "socket"
        slot.start_source(0)
        silence = bytes([0xF8, 0xFF, 0xFE])
        for sequence in range(5):
            fanout_forward([slot], False, sequence, 960 * sequence, 0, silence, -1)
        [receiver] = receiving.getReceivers()

        async def received() -> int:
            report = await receiver.getStats()
            return sum(s.packetsReceived for s in report.values() if s.type == "inbound-rtp")

        for _ in range(40):
            if await received() >= 5:
                break
            await asyncio.sleep(0.05)
        assert await received() == 5
        slot.disconnect()
        assert slot.mode is None
    finally:
        await sending.close()
        await receiving.close()


def test_the_srtp_session_exposes_the_libsrtp_context_the_compiled_loop_uses():
    """pylibsrtp's `Session._srtp[0]` and `lib.srtp_protect`: a slot's datagram is Python's SRTP."""
    key = bytes(range(30))
    plain = b"\x80\x60\x00\x01" + bytes(8) + b"payload" * 20  # sequence number 1, timestamp 0
    ffi, lib = srtp_binding.ffi, srtp_binding.lib
    session = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    context = int(ffi.cast("uintptr_t", session._srtp[0]))
    protect = int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect")))
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener,
    ):
        listener.bind(("127.0.0.1", 0))
        slot = Slot(video=False)
        slot.configure(plain[:12], 0x60, 0, 0)
        slot.connect_socket(session, context, protect, udp.fileno(), *listener.getsockname())
        slot.start_source(0)  # the slot's timeline starts at 0, its numbering at 1
        # Audio never waits in the pacer: sent at once, nothing left waiting.
        assert fanout_forward([slot], False, 1, 0, 0, plain[12:], -1) == (1, 0, False, True, 0)
        received = listener.recv(2048)
        slot.disconnect()
    expected = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)).protect(plain)
    assert received == expected


def test_a_missing_internal_is_reported_with_the_pinned_version(monkeypatch):
    monkeypatch.delattr(RTCRtpSender, "_send_keyframe")
    with pytest.raises(AiortcChangedError, match=r"RTCRtpSender\._send_keyframe.*1\.16\.0"):
        aiortc_internals._require_class_attributes()


@pytest.mark.asyncio
async def test_the_estimator_a_publisher_s_video_shares_is_run_compiled(pc):
    """Both video receivers of a connection feed one estimator: aiortc's, run compiled."""
    camera, low = _receiver(pc, "video"), _receiver(pc, "video")
    tap_receiver_packets(camera, lambda packet: None)
    tap_receiver_packets(low, lambda packet: None)
    estimators = [getattr(r, aiortc_internals._BITRATE_ESTIMATOR) for r in (camera, low)]
    shared = aiortc_internals._ESTIMATES[camera.transport].estimator
    assert shared in estimators
    assert aiortc_internals._ESTIMATES[low.transport].estimator is shared
    assert aiortc_internals._ESTIMATES[camera.transport].compiled is not None
