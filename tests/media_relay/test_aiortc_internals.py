"""Every aiortc internal the relay relies on, checked against the pinned aiortc (1.16.0).

If one of these fails after an upgrade, `media_relay/aiortc_internals.py` needs rework before the
relay can forward again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import av
import pytest
import pytest_asyncio
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket, RtpPacket

from media_relay import aiortc_internals
from media_relay.aiortc_internals import AiortcChangedError, hook_keyframe_requests, tap_receiver
from media_relay.forwarding import ForwardedTrack

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
async def test_a_sender_packs_an_encoded_packet_without_encoding_it(pc):
    """The send side relies on `_next_encoded_frame` packing an `av.Packet` as it is."""
    track = ForwardedTrack("video")
    sender = pc.addTransceiver(track, direction="sendonly").sender
    track.start_source()
    track.push(b"\x10keyframe", 90_000, keyframe=True)
    encoded = await sender._next_encoded_frame(VP8)
    assert encoded is not None
    assert encoded.timestamp == 0
    [payload] = encoded.payloads
    assert payload.endswith(b"\x10keyframe")  # after the VP8 payload descriptor


def test_a_missing_internal_is_reported_with_the_pinned_version(monkeypatch):
    monkeypatch.delattr(RTCRtpSender, "_send_keyframe")
    with pytest.raises(AiortcChangedError, match=r"RTCRtpSender\._send_keyframe.*1\.16\.0"):
        aiortc_internals._require_class_attributes()
