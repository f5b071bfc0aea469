"""The publisher's receive path when the relay forwards packets (`tap_receiver_packets`).

aiortc's per-packet receiver work is replaced by a lean path; these tests check that what the
publisher's browser relies on survives it: RTX unwrapping, NACKs for lost packets, statistics for
receiver reports, REMB from the bandwidth estimator, PLIs, and nothing decoded or delayed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import weakref
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from aiortc import AudioStreamTrack, RTCPeerConnection, RTCRtpReceiver, RTCRtpTransceiver
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    wrap_rtx,
)
from pylibsrtp import Policy, Session
from pylibsrtp import _binding as srtp_binding

from media_relay._fanout import unprotect_rtp
from media_relay.aiortc_internals import tap_receiver_packets
from media_relay.rtp_fanout import ABS_SEND_TIME_URI, AUDIO_LEVEL_URI, MID_URI

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
RTX = RTCRtpCodecParameters(
    mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}
)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
MEDIA_SSRC, RTX_SSRC, RTCP_SSRC = 1234, 5678, 42
VIDEO_PARAMETERS = RTCRtpReceiveParameters(
    codecs=[VP8, RTX],
    encodings=[
        RTCRtpDecodingParameters(
            ssrc=MEDIA_SSRC, payloadType=96, rtx=RTCRtpRtxParameters(ssrc=RTX_SSRC)
        )
    ],
)


@pytest_asyncio.fixture
async def pc() -> AsyncIterator[RTCPeerConnection]:
    connection = RTCPeerConnection()
    yield connection
    await connection.close()


class Publisher:
    """A tapped receiver, the packets it hands on and the RTCP it sends the publisher."""

    def __init__(self, pc: RTCPeerConnection, kind: str, estimator: object = None) -> None:
        self.receiver: RTCRtpReceiver = pc.addTransceiver(kind, direction="recvonly").receiver
        self.receiver._track = RemoteStreamTrack(kind=kind)
        if estimator is not None:
            self.receiver._RTCRtpReceiver__remote_bitrate_estimator = estimator  # type: ignore[attr-defined]
        self.packets: list[RtpPacket] = []
        self.rtcp: list[object] = []
        self.tap = tap_receiver_packets(self.receiver, self.packets.append)
        self.receiver._set_rtcp_ssrc(RTCP_SSRC)

        async def capture(packet: object) -> None:
            self.rtcp.append(packet)

        self.receiver._send_rtcp = capture  # type: ignore[method-assign]

    async def send(
        self, sequence: int, *, payload: bytes = b"\x10\x00\x00", marker: int = 1, **fields: int
    ) -> None:
        packet = RtpPacket(
            payload_type=fields.get("payload_type", 96),
            sequence_number=sequence,
            timestamp=fields.get("timestamp", 3000 * sequence),
            ssrc=fields.get("ssrc", MEDIA_SSRC),
            payload=payload,
        )
        packet.marker = marker
        if "abs_send_time" in fields:
            packet.extensions.abs_send_time = fields["abs_send_time"]
        await self.receiver._handle_rtp_packet(packet, arrival_time_ms=fields.get("arrival", 0))
        await asyncio.sleep(0)  # NACKs and REMBs leave in tasks of their own

    def nacks(self) -> list[list[int]]:
        return [
            p.lost for p in self.rtcp if isinstance(p, RtcpRtpfbPacket) and p.fmt == RTCP_RTPFB_NACK
        ]


@pytest.mark.asyncio
async def test_a_packet_the_relay_fails_on_is_logged_and_the_receiver_goes_on(pc, caplog):
    """An exception out of the receive path would reach aiortc's DTLS task and close the
    publisher's connection."""
    receiver = pc.addTransceiver("video", direction="recvonly").receiver
    receiver._track = RemoteStreamTrack(kind="video")
    handed: list[int] = []

    def sink(packet: RtpPacket) -> None:
        handed.append(packet.sequence_number)
        if packet.sequence_number == 2:
            raise RuntimeError("not this one")

    tap_receiver_packets(receiver, sink)
    await receiver.receive(VIDEO_PARAMETERS)
    for sequence in (1, 2, 3):
        packet = RtpPacket(payload_type=96, sequence_number=sequence, ssrc=MEDIA_SSRC)
        await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
    assert handed == [1, 2, 3]
    assert "not handled in full" in caplog.text


@pytest.mark.asyncio
async def test_a_retransmission_is_handed_on_as_the_media_packet_it_carries(pc):
    publisher = Publisher(pc, "video")
    await publisher.receiver.receive(VIDEO_PARAMETERS)
    original = RtpPacket(
        payload_type=96, sequence_number=700, timestamp=9000, ssrc=MEDIA_SSRC, payload=b"\x10ab"
    )
    rtx = wrap_rtx(original, payload_type=97, sequence_number=3, ssrc=RTX_SSRC)
    await publisher.receiver._handle_rtp_packet(rtx, arrival_time_ms=0)
    [packet] = publisher.packets
    assert (packet.ssrc, packet.payload_type, packet.sequence_number) == (MEDIA_SSRC, 96, 700)
    assert (packet.timestamp, packet.payload) == (9000, b"\x10ab")
    assert publisher.tap.media_ssrc == MEDIA_SSRC
    await publisher.receiver.stop()


@pytest.mark.asyncio
async def test_a_retransmission_from_an_unknown_ssrc_is_dropped(pc):
    publisher = Publisher(pc, "video")
    await publisher.receiver.receive(VIDEO_PARAMETERS)
    await publisher.send(1, payload_type=97, ssrc=999, payload=b"\x00\x07\x10")
    assert publisher.packets == []
    await publisher.receiver.stop()


@pytest.mark.asyncio
async def test_a_gap_makes_one_nack_naming_the_lost_packets_and_a_late_arrival_none(pc):
    publisher = Publisher(pc, "video")
    await publisher.receiver.receive(VIDEO_PARAMETERS)
    for sequence in (10, 11, 14, 15, 12, 16):
        await publisher.send(sequence)
    assert publisher.nacks() == [[12, 13]]
    assert [p.sequence_number for p in publisher.packets] == [10, 11, 14, 15, 12, 16]
    await publisher.receiver.stop()


@pytest.mark.asyncio
async def test_audio_sends_no_nacks_and_no_remb(pc):
    publisher = Publisher(pc, "audio")
    await publisher.receiver.receive(RTCRtpReceiveParameters(codecs=[OPUS]))
    for sequence in (1, 5, 9):
        await publisher.send(sequence, payload_type=111, abs_send_time=sequence << 10)
    assert len(publisher.packets) == 3
    assert publisher.rtcp == []
    await publisher.receiver.stop()


@pytest.mark.asyncio
async def test_receiver_report_statistics_count_received_and_lost_packets(pc):
    """The receiver's own RTCP loop builds its receiver reports from these statistics."""
    publisher = Publisher(pc, "video")
    await publisher.receiver.receive(VIDEO_PARAMETERS)
    for sequence in (100, 101, 103, 104):
        await publisher.send(sequence)
    stream = publisher.receiver._RTCRtpReceiver__remote_streams[MEDIA_SSRC]  # type: ignore[attr-defined]
    assert (stream.packets_received, stream.max_seq, stream.packets_lost) == (4, 104, 1)
    assert stream.fraction_lost == 256 // 5
    await publisher.receiver.stop()


@pytest.mark.asyncio
async def test_the_bandwidth_estimator_sees_frames_at_most_every_60_ms_with_all_their_bytes(pc):
    seen: list[tuple[int, int, int]] = []

    class Estimator:
        def add(self, *, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int):
            seen.append((arrival_time_ms, abs_send_time, payload_size))
            return (300_000, [ssrc])

    publisher = Publisher(pc, "video", Estimator())
    await publisher.receiver.receive(VIDEO_PARAMETERS)
    await publisher.send(1, payload=bytes(1000), marker=0, abs_send_time=100, arrival=5)
    await publisher.send(2, payload=bytes(500), marker=1, abs_send_time=101, arrival=6)
    # A frame ending within 60 ms of the last call waits: its bytes go with the next call.
    await publisher.send(3, payload=bytes(700), marker=1, abs_send_time=900, arrival=40)
    await publisher.send(4, payload=bytes(300), marker=1, abs_send_time=1800, arrival=70)
    assert seen == [(6, 101, 1500), (70, 1800, 1000)]
    rembs = [p for p in publisher.rtcp if isinstance(p, RtcpPsfbPacket)]
    assert [(p.fmt, p.ssrc, p.media_ssrc) for p in rembs] == [(RTCP_PSFB_APP, RTCP_SSRC, 0)] * 2
    await publisher.receiver.stop()


@pytest.mark.asyncio
async def test_the_real_estimator_answers_a_steady_stream_with_remb(pc):
    """aiortc's estimator, fed per frame, reports an estimate within a few seconds of media."""
    publisher = Publisher(pc, "video")
    await publisher.receiver.receive(VIDEO_PARAMETERS)
    sequence = 0
    for frame in range(150):  # 5 s at 30 fps, 3 packets of 1000 bytes a frame
        sent_ms = frame * 33
        for position in range(3):
            sequence += 1
            await publisher.send(
                sequence,
                payload=bytes(1000),
                marker=int(position == 2),
                timestamp=3000 * frame,
                abs_send_time=((sent_ms + position) << 18) // 1000,
                arrival=10_000 + sent_ms + position,
            )
    rembs = [p for p in publisher.rtcp if isinstance(p, RtcpPsfbPacket)]
    assert rembs
    assert all(p.fmt == RTCP_PSFB_APP for p in rembs)
    await publisher.receiver.stop()


@pytest.mark.asyncio
async def test_a_disabled_receiver_hands_nothing_on(pc):
    publisher = Publisher(pc, "video")
    await publisher.receiver.receive(VIDEO_PARAMETERS)
    publisher.receiver._enabled = False
    await publisher.send(1)
    assert publisher.packets == []
    await publisher.receiver.stop()


@pytest.mark.asyncio
async def test_a_keyframe_request_reaches_the_publisher_as_a_pli_through_the_lean_path(pc):
    publisher = Publisher(pc, "video")
    await publisher.receiver.receive(VIDEO_PARAMETERS)
    assert await publisher.tap.request_keyframe() is False
    await publisher.send(1)
    assert await publisher.tap.request_keyframe() is True
    [pli] = publisher.rtcp
    assert isinstance(pli, RtcpPsfbPacket)
    assert (pli.fmt, pli.ssrc, pli.media_ssrc) == (RTCP_PSFB_PLI, RTCP_SSRC, MEDIA_SSRC)
    await publisher.receiver.stop()


async def _tapped_audio(
    packets: list[RtpPacket],
    wanted: int,
    before_answer: Callable[[RTCRtpTransceiver], None] = lambda _: None,
) -> tuple[RTCPeerConnection, RTCPeerConnection, RTCRtpTransceiver]:
    """A real connection whose receiving end is tapped into `packets`, once `wanted` arrived."""
    sending, receiving = RTCPeerConnection(), RTCPeerConnection()
    sending.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await sending.setLocalDescription(await sending.createOffer())
    await receiving.setRemoteDescription(sending.localDescription)
    [transceiver] = receiving.getTransceivers()
    tap_receiver_packets(transceiver.receiver, packets.append)
    before_answer(transceiver)
    await receiving.setLocalDescription(await receiving.createAnswer())
    await sending.setRemoteDescription(receiving.localDescription)
    for _ in range(100):
        if len(packets) >= wanted:
            break
        await asyncio.sleep(0.05)
    assert len(packets) >= wanted
    return sending, receiving, transceiver


@pytest.mark.asyncio
async def test_once_routed_a_publishers_packets_skip_aiortcs_queue_and_still_count():
    """Over a real connection: the first packet is routed by aiortc, the rest arrive directly."""
    routed: list[bytes] = []

    def count_routed(transceiver: RTCRtpTransceiver) -> None:
        dtls = transceiver.receiver.transport
        handle_rtp_data = dtls._handle_rtp_data

        async def counted(data: bytes, arrival_time_ms: int) -> None:
            routed.append(data)
            await handle_rtp_data(data, arrival_time_ms)

        dtls._handle_rtp_data = counted  # type: ignore[method-assign]

    packets: list[RtpPacket] = []
    sending, receiving, transceiver = await _tapped_audio(packets, 25, count_routed)
    try:
        assert len(routed) <= 2  # the SSRC's first packet (and any queued behind it)
        sequence_numbers = [p.sequence_number for p in packets]
        assert sequence_numbers == list(range(sequence_numbers[0], sequence_numbers[-1] + 1))
        [transport_stats] = [
            s for s in (await transceiver.receiver.getStats()).values() if s.type == "transport"
        ]
        assert transport_stats.packetsReceived >= len(packets)
    finally:
        await sending.close()
        await receiving.close()


@pytest.mark.asyncio
async def test_a_closed_tapped_connection_is_freed(caplog):
    """The ingest and the compiled stream refer to the transport and its receivers: once the
    connection is closed, nothing of the relay's may keep them (a long day of lessons leaks)."""
    caplog.set_level(logging.CRITICAL)  # a captured log record would hold aiortc's objects
    packets: list[RtpPacket] = []
    sending, receiving, transceiver = await _tapped_audio(packets, 10)
    dtls = weakref.ref(transceiver.receiver.transport)
    await sending.close()
    await receiving.close()
    del transceiver, sending, receiving
    for _ in range(40):  # aiortc's own tasks end a few loop turns after close()
        gc.collect()
        if dtls() is None:
            break
        await asyncio.sleep(0.05)
    assert dtls() is None


def _extension_maps() -> list[HeaderExtensionsMap]:
    """Extension ids as browsers negotiate them, and ids over 14, which only a two-byte header
    (RFC 8285) can carry."""
    maps = []
    for mid, abs_send_time, audio_level in ((1, 2, 3), (4, 3, 1), (9, 14, 12), (15, 200, 31)):
        extensions = HeaderExtensionsMap()
        extensions.configure(
            RTCRtpParameters(
                headerExtensions=[
                    RTCRtpHeaderExtensionParameters(id=mid, uri=MID_URI),
                    RTCRtpHeaderExtensionParameters(id=abs_send_time, uri=ABS_SEND_TIME_URI),
                    RTCRtpHeaderExtensionParameters(id=audio_level, uri=AUDIO_LEVEL_URI),
                ]
            )
        )
        maps.append(extensions)
    return maps


def test_the_compiled_ingest_reads_what_pylibsrtp_and_aiortcs_parser_read():
    """`unprotect_rtp` runs the compiled ingest's unprotect and parser (`parse_rtp`), as `Ingest`
    does for every routed datagram."""
    rng = random.Random(6)  # noqa: S311 -- repeatable test packets, not a secret
    key = bytes(range(30))
    protect = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    checked = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    compiled = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    context = int(srtp_binding.ffi.cast("uintptr_t", compiled._srtp[0]))
    unprotect = int(
        srtp_binding.ffi.cast(
            "uintptr_t", srtp_binding.ffi.addressof(srtp_binding.lib, "srtp_unprotect")
        )
    )
    for number, extensions in enumerate(_extension_maps() * 200):
        ids = getattr(extensions, "_HeaderExtensionsMap__ids")  # noqa: B009
        packet = RtpPacket(
            payload_type=rng.choice((96, 111, 127)),
            marker=rng.randint(0, 1),
            sequence_number=number,
            timestamp=rng.getrandbits(32),
            ssrc=rng.getrandbits(32),
            payload=rng.randbytes(rng.randint(1, 1100)),
        )
        packet.csrc = [rng.getrandbits(32) for _ in range(rng.randint(0, 2))]
        packet.padding_size = rng.choice((0, 0, 1, 7))
        if rng.random() < 0.8:
            packet.extensions.mid = str(rng.randint(0, 99))
        if rng.random() < 0.8:
            packet.extensions.abs_send_time = rng.getrandbits(24)
        if rng.random() < 0.5:
            packet.extensions.audio_level = (rng.random() < 0.5, rng.randint(0, 127))
        datagram = protect.protect(packet.serialize(extensions))
        expected = RtpPacket.parse(checked.unprotect(datagram), extensions)
        fields = unprotect_rtp(
            context, unprotect, datagram, ids.abs_send_time or 0, ids.audio_level or 0
        )
        assert fields is not None
        level = expected.extensions.audio_level
        assert fields == (
            expected.payload_type,
            expected.marker,
            expected.sequence_number,
            expected.timestamp,
            expected.ssrc,
            expected.payload,
            expected.padding_size,
            -1 if expected.extensions.abs_send_time is None else expected.extensions.abs_send_time,
            -1 if level is None else (0x80 if level[0] else 0) | level[1],
        )
        # A datagram that does not authenticate is dropped, as aiortc drops it.
        tampered = bytearray(datagram)
        tampered[-1] ^= 1
        sequence = (number + 1) & 0xFFFF
        forged = protect.protect(RtpPacket(sequence_number=sequence, ssrc=1).serialize())
        assert unprotect_rtp(context, unprotect, bytes(tampered), 0, 0) is None
        assert unprotect_rtp(context, unprotect, forged[:11], 0, 0) is None


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"\xa0\x60\x00\x01" + bytes(8) + b"pay\x00", id="padding of 0"),
        pytest.param(b"\xa0\x60\x00\x01" + bytes(8) + b"pay\x09", id="padding past the header"),
    ],
)
def test_the_compiled_ingest_drops_authenticated_datagrams_that_are_not_valid_rtp(header):
    """What a hostile publisher can send once its SRTP is right: refused, not read past.

    (libsrtp itself refuses to protect or unprotect headers whose CSRCs or extension run past
    the end, so only the padding byte, which it does not read, gets this far.)
    """
    key = bytes(range(30))
    protect = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    inbound = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    ffi, lib = srtp_binding.ffi, srtp_binding.lib
    context = int(ffi.cast("uintptr_t", inbound._srtp[0]))
    unprotect = int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_unprotect")))
    datagram = protect.protect(header)
    # Authentic: pylibsrtp hands it on; aiortc's parser refuses it, and so does ours.
    with pytest.raises(ValueError, match="padding"):
        RtpPacket.parse(
            Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND)).unprotect(datagram)
        )
    assert unprotect_rtp(context, unprotect, datagram, 2, 3) is None
