"""The per-slot RTP rewrite of the forwarding hot path, packet by packet, with no network.

Each test feeds publisher packets through the compiled fan-out loop to a `SlotOutput` whose leg
connects it to a recorder instead of a socket: the recorder gets the bytes the slot would have
SRTP-protected and sent, and parses them back as the subscriber's browser would.
"""

from __future__ import annotations

import itertools
import struct
import sys
import time

from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media_relay._fanout import Slot
from media_relay.rtp_fanout import (
    ABS_SEND_TIME_URI,
    AUDIO_LEVEL_URI,
    MID_URI,
    Fanned,
    Kind,
    SlotOutput,
    fan_out,
    vp8_keyframe_start,
)

SSRC, RTX_SSRC = 0x11111111, 0x22222222
VP8_PT, RTX_PT, OPUS_PT = 97, 98, 109
EXTENSIONS = [
    RTCRtpHeaderExtensionParameters(id=4, uri=MID_URI),
    RTCRtpHeaderExtensionParameters(id=2, uri=ABS_SEND_TIME_URI),
    RTCRtpHeaderExtensionParameters(id=1, uri=AUDIO_LEVEL_URI),
]
KEY = b"\x90\x80\x05" + b"\x10" + bytes(40)  # S bit, partition 0, picture id; a keyframe
KEY_REST = b"\x80\x80\x05" + bytes(40)  # the same frame's next packet (no S bit)
DELTA = b"\x90\x80\x06" + b"\x11" + bytes(40)


class RecordingLeg:
    """A subscriber's sender, as far as the slot can tell: it records what it is given."""

    ssrc = SSRC
    rtx_ssrc = RTX_SSRC

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.resent: list[bytes] = []
        self.connected = True

    def connect(self, slot: Slot) -> bool:
        slot.connect_callable(self._send)
        return True

    def _send(self, packet: bytes) -> bool:
        if self.connected:
            self.sent.append(packet)
        return self.connected

    def resend(self, packet: bytes) -> bool:
        self.resent.append(packet)
        return True


def _parameters(kind: Kind) -> RTCRtpSendParameters:
    if kind == "audio":
        codecs = [
            RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, payloadType=OPUS_PT)
        ]
    else:
        codecs = [
            RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=VP8_PT),
            RTCRtpCodecParameters(
                mimeType="video/rtx",
                clockRate=90000,
                payloadType=RTX_PT,
                parameters={"apt": VP8_PT},
            ),
        ]
    return RTCRtpSendParameters(codecs=codecs, headerExtensions=EXTENSIONS, muxId="7")


def _slot(kind: Kind = "video") -> tuple[SlotOutput, RecordingLeg]:
    leg = RecordingLeg()
    slot = SlotOutput(kind, leg)
    slot.configure(_parameters(kind))
    slot.start_source()
    return slot, leg


def _send(
    output: SlotOutput,
    seq: int,
    ts: int,
    payload: bytes,
    *,
    marker: int = 1,
    audio_level: tuple[bool, int] | None = None,
) -> Fanned:
    """The publisher's packet, through the fan-out loop to the one slot."""
    packet = RtpPacket(payload_type=96, marker=marker, sequence_number=seq, timestamp=ts)
    packet.ssrc = 0x33333333
    packet.payload = payload
    packet.extensions.audio_level = audio_level
    return fan_out(output.kind, packet, [output.slot])


def _parse(data: bytes) -> RtpPacket:
    extensions = HeaderExtensionsMap()
    extensions.configure(_parameters("video"))
    return RtpPacket.parse(data, extensions)


def test_the_header_is_rewritten_for_the_subscriber_and_the_payload_kept():
    slot, leg = _slot()
    assert _send(slot, 5000, 123_456, KEY) == Fanned(1, 0, frame_end=True, keyframe_start=True)
    [data] = leg.sent
    packet = _parse(data)
    assert (packet.ssrc, packet.payload_type, packet.marker) == (SSRC, VP8_PT, 1)
    assert packet.payload == KEY
    assert packet.extensions.mid == "7"
    assert packet.extensions.abs_send_time is not None
    # What the sender's reports say it sent (SenderLeg reads them when it makes a report).
    packets, octets, _, _, _, rtp_timestamp, _, _ = slot.slot.counters()
    assert (packets, octets, rtp_timestamp) == (1, len(KEY), packet.timestamp)
    assert slot.stats.packets_sent == 1


def test_an_audio_slot_carries_the_publishers_audio_level():
    slot, leg = _slot("audio")
    _send(slot, 1, 960, b"opus", audio_level=(True, 30))
    _send(slot, 2, 1920, b"opus", audio_level=(False, 90))
    assert [_parse(data).extensions.audio_level for data in leg.sent] == [(True, 30), (False, 90)]


def test_gaps_and_late_packets_keep_their_place_in_the_subscribers_numbering():
    slot, leg = _slot()
    for seq, payload in ((100, KEY), (102, DELTA), (101, KEY_REST)):
        _send(slot, seq, 9000, payload)
    first, gap, late = (_parse(data).sequence_number for data in leg.sent)
    assert (gap - first) & 0xFFFF == 2
    assert (late - first) & 0xFFFF == 1


def test_video_is_held_until_a_keyframe_starts_and_then_numbered_without_a_gap():
    slot, leg = _slot()
    assert _send(slot, 10, 3000, DELTA).held == 1  # the slot asks for a keyframe
    assert _send(slot, 11, 3000, KEY_REST).held == 1
    assert leg.sent == []
    assert slot.stats.frames_dropped == 2
    assert _send(slot, 12, 6000, KEY, marker=0).held == 0
    assert _send(slot, 13, 6000, KEY_REST).held == 0
    first, second = (_parse(data).sequence_number for data in leg.sent)
    assert (second - first) & 0xFFFF == 1
    assert slot.stats.first_frame_keyframe == [True]
    assert slot.stats.frames_sent == 1


def test_a_new_source_continues_the_slots_sequence_numbers_and_timeline():
    slot, leg = _slot()
    _send(slot, 65535, 4_294_967_000, KEY)
    _send(slot, 0, (4_294_967_000 + 3000) & 0xFFFFFFFF, DELTA)  # both wrap, publisher's side
    slot.start_source()
    _send(slot, 40_000, 17, DELTA)  # another publisher: held for its keyframe
    _send(slot, 40_001, 3017, KEY)
    packets = [_parse(data) for data in leg.sent]
    assert [(p.sequence_number - packets[0].sequence_number) & 0xFFFF for p in packets] == [0, 1, 2]
    steps = [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in itertools.pairwise(packets)]
    assert steps[0] == 3000
    assert 3000 <= steps[1] < 90_000  # at least one frame on, never backwards
    assert slot.stats.first_frame_keyframe == [True, True]


def test_a_retransmission_from_before_the_new_source_is_not_sent():
    slot, leg = _slot()
    _send(slot, 500, 3000, KEY)
    _send(slot, 499, 0, DELTA)  # the publisher resent an older packet
    assert len(leg.sent) == 1


def test_a_nack_is_answered_from_the_history_wrapped_as_rtx():
    slot, leg = _slot()
    _send(slot, 100, 3000, KEY)
    original = _parse(leg.sent[0])
    assert slot.retransmit(original.sequence_number) is True
    [resent] = leg.resent
    rtx = _parse(resent)
    assert (rtx.ssrc, rtx.payload_type, rtx.marker) == (RTX_SSRC, RTX_PT, original.marker)
    assert rtx.payload == struct.pack("!H", original.sequence_number) + KEY
    assert rtx.timestamp == original.timestamp
    assert rtx.extensions.mid == "7"
    assert slot.retransmit((original.sequence_number + 1) & 0xFFFF) is False  # never sent
    assert slot.stats.retransmissions_sent == 1
    assert slot.stats.packets_sent == 1  # a resend is not new media


def test_a_slot_sends_nothing_before_its_sender_starts_or_when_carrying_nothing():
    leg = RecordingLeg()
    slot = SlotOutput("audio", leg)
    slot.start_source()
    assert _send(slot, 1, 0, b"opus").sent == 0  # not configured yet
    assert slot.configure(_parameters("audio")) is True
    slot.stop_source()
    _send(slot, 2, 960, b"opus")
    slot.start_source()
    slot.close()
    _send(slot, 3, 1920, b"opus")
    assert leg.sent == []


def test_a_packet_the_leg_could_not_send_is_not_in_the_history():
    slot, leg = _slot("audio")
    leg.connected = False
    assert _send(slot, 1, 0, b"opus").sent == 0
    assert slot.retransmit(slot.slot.last_seq) is False
    assert slot.stats.packets_sent == 0


def test_the_history_keeps_the_payload_not_a_copy_per_slot():
    """Sixty slots' histories hold one payload object: no allocation per packet per slot."""
    outputs = [_slot()[0] for _ in range(60)]
    payload = KEY + bytes(1000)
    packet = RtpPacket(payload_type=96, marker=1, sequence_number=1, timestamp=0)
    packet.payload = payload
    before = sys.getrefcount(payload)
    fan_out("video", packet, [output.slot for output in outputs])
    assert sys.getrefcount(payload) == before + 60
    for output in outputs:
        output.close()


def test_vp8_keyframe_start_reads_the_payload_descriptor():
    assert vp8_keyframe_start(KEY)
    assert not vp8_keyframe_start(KEY_REST)  # not a frame's first packet
    assert not vp8_keyframe_start(DELTA)
    assert vp8_keyframe_start(b"\x10\x10")  # no extension byte
    # 15-bit picture id, TL0PICIDX and TID/KEYIDX before the VP8 payload header.
    assert vp8_keyframe_start(b"\x90\xe0\x80\x01\x02\x03\x10")
    assert not vp8_keyframe_start(b"\x90\xe0\x80\x01\x02\x03\x11")
    assert not vp8_keyframe_start(b"\x11\x10")  # partition 1
    assert not vp8_keyframe_start(b"\x90\x80")  # truncated


def test_frame_ends_and_keyframe_starts_are_reported_even_with_no_subscriber():
    """The publisher's counters do not depend on anyone listening."""
    video = RtpPacket(payload_type=96, marker=0, sequence_number=1, timestamp=0, payload=KEY)
    assert fan_out("video", video, []) == Fanned(0, 0, keyframe_start=True, frame_end=False)
    video.marker, video.payload = 1, DELTA
    assert fan_out("video", video, []) == Fanned(0, 0, keyframe_start=False, frame_end=True)
    audio = RtpPacket(payload_type=111, marker=0, sequence_number=1, timestamp=0, payload=KEY)
    assert fan_out("audio", audio, []) == Fanned(0, 0, keyframe_start=False, frame_end=True)


def test_the_loop_stamps_abs_send_time_and_the_sender_report_clock_from_the_wall_clock():
    slot, leg = _slot()
    before = time.time()
    _send(slot, 1, 0, KEY)
    after = time.time()
    *_, report_ntp, _ = slot.slot.counters()
    assert before - 0.01 <= report_ntp / (1 << 32) - 2_208_988_800 <= after + 0.01
    stamped = _parse(leg.sent[0]).extensions.abs_send_time
    assert stamped == (report_ntp >> 14) & 0xFFFFFF
