"""The relay's hot path: one publisher's RTP packet rewritten and sent to each subscriber slot.

A slot (`SlotOutput`) is one subscriber sender: its own SSRC, sequence numbers, RTP timeline,
payload type and header extensions, whoever it carries. Its RTP header is a template written once
when the sender starts; per packet only the marker/payload type byte, the sequence number, the
timestamp and the abs-send-time (and audio level) bytes change. The per-packet loop over a source's
slots is compiled (`media_relay/_fanout.c`, built by `pip install -e .`): header, payload copy,
SRTP and the datagram send happen in C, with no Python object per packet per subscriber. So does
everything before it for a publisher's packet (`media_relay.aiortc_internals` taps the receiver):
the read, SRTP, the receiver's statistics and the fan-out run without Python once aiortc has
routed the SSRC.

Sequence numbers map by an offset, so gaps and the publisher's retransmissions reach the
subscriber as they are; the offset (and the timestamp offset) is set again when the slot starts a
new source, so its stream stays continuous. Video is held at packet level until the first packet
of a VP8 keyframe. What a slot sent stays in a short history (a reference to the publisher's
payload), from which its subscriber's NACKs are answered, RTX-wrapped when RTX was negotiated.

Video passes the process-wide pacer (`media_relay.pacing`): past its budget a datagram waits, in
order, and leaves a few loop turns later; audio never waits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from struct import Struct
from typing import Literal, NamedTuple, Protocol

from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import RtpPacket

from media_relay import pacing
from media_relay._fanout import Slot
from media_relay._fanout import forward as _forward
from media_relay._fanout import vp8_keyframe_start as vp8_keyframe_start

Kind = Literal["audio", "video"]

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

_SEQ = Struct("!H")
_SSRC = Struct("!I")


class Leg(Protocol):
    """Where a slot's packets go: a subscriber's sender (`aiortc_internals.SenderLeg`)."""

    @property
    def ssrc(self) -> int: ...
    @property
    def rtx_ssrc(self) -> int: ...
    def connect(self, slot: Slot) -> bool: ...
    def resend(self, packet: bytes) -> bool: ...


@dataclass
class SlotStats:
    """Counters of one subscriber receive slot."""

    frames_sent: int = 0
    frames_dropped: int = 0
    first_frame_keyframe: list[bool | None] = field(default_factory=list)
    """For each source the slot carried, in order: was its first frame sent a keyframe (None: no
    frame was sent before the source changed, or none yet)."""
    packets_sent: int = 0
    retransmissions_sent: int = 0
    send_errors: int = 0
    """Datagrams that did not leave, each counted once. Those SRTP refused, or the leg's send
    refused or raised, count neither as sent nor in the history. Those the socket refused (a full
    buffer) are lost as on a network: sent, and in the history for a NACK."""


class Fanned(NamedTuple):
    """What became of one publisher packet (a tuple: one is made per packet)."""

    sent: int
    """Slots the packet was accepted for: sent, or waiting in the pacer to be sent in order."""
    held: int
    """Slots that need a keyframe before they can go on."""
    keyframe_start: bool
    frame_end: bool


def fan_out(kind: Kind, packet: RtpPacket, slots: list[Slot]) -> Fanned:
    """Send a publisher's packet to each of `slots` (the compiled loop), video through the pacer.

    The loop also reads the VP8 payload descriptor (is this a keyframe's first packet) and stamps
    abs-send-time and the sender-report clock itself. The relay's own packets enter the same loop
    from C, through a publication's compiled `Stream` (`media_relay.forwarding`); this is its
    entry from Python, for a packet in hand.
    """
    level = packet.extensions.audio_level
    sent, held, keyframe_start, frame_end, waiting = _forward(
        slots,
        kind == "video",
        packet.sequence_number,
        packet.timestamp,
        packet.marker,
        packet.payload,
        -1 if level is None else (0x80 if level[0] else 0) | (level[1] & 0x7F),
    )
    if waiting:
        pacing.datagrams_waiting()
    return Fanned(sent, held, keyframe_start, frame_end)


class SlotOutput:
    """One subscriber slot's RTP stream (see the module docstring); `slot` is its compiled half."""

    def __init__(self, kind: Kind, leg: Leg) -> None:
        self.kind = kind
        self.slot = Slot(video=kind == "video")
        self._leg = leg
        self._header_size = 0
        self._rtx_payload_type: int | None = None
        self._rtx_sequence = random.getrandbits(16)
        self._first_frames: list[bool | None] = []
        self._sources = 0
        self._retransmissions = 0

    @property
    def ssrc(self) -> int:
        """The subscriber's sender's SSRC: what the subscriber's RTCP names this slot by."""
        return self._leg.ssrc

    @property
    def ready(self) -> bool:
        """The subscriber's sender has started: payload types and extension ids are known."""
        return bool(self.slot.ready)

    def configure(self, parameters: RTCRtpSendParameters) -> bool:
        """Build the header template from what the subscriber negotiated and connect the slot.

        False when the sender's transport is not connected after all (nothing will be sent).
        """
        codec = parameters.codecs[0]
        payload_type = codec.payloadType or 0
        self._rtx_payload_type = next(
            (
                c.payloadType
                for c in parameters.codecs
                if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") == payload_type
            ),
            None,
        )
        ids = {ext.uri: ext.id for ext in parameters.headerExtensions}
        elements = bytearray()
        abs_send_time_at = audio_level_at = 0
        if MID_URI in ids and parameters.muxId:
            mid = parameters.muxId.encode()
            elements += bytes([ids[MID_URI] << 4 | (len(mid) - 1)]) + mid
        if ABS_SEND_TIME_URI in ids:
            elements += bytes([ids[ABS_SEND_TIME_URI] << 4 | 2])
            abs_send_time_at = 16 + len(elements)
            elements += b"\x00\x00\x00"
        if self.kind == "audio" and AUDIO_LEVEL_URI in ids:
            elements += bytes([ids[AUDIO_LEVEL_URI] << 4])
            audio_level_at = 16 + len(elements)
            elements += b"\x7f"  # silence, until the publisher's packets say otherwise
        elements += bytes(-len(elements) % 4)
        template = bytearray(12)
        template[0] = 0x90 if elements else 0x80
        template[8:12] = self._leg.ssrc.to_bytes(4, "big")
        if elements:
            template += b"\xbe\xde" + (len(elements) // 4).to_bytes(2, "big") + elements
        self._header_size = len(template)
        self.slot.configure(bytes(template), payload_type, abs_send_time_at, audio_level_at)
        return self._leg.connect(self.slot)

    def start_source(self) -> None:
        """Carry a new source: rebase its timeline, hold video until its next keyframe."""
        if self._sources:
            self._first_frames.append(self._first_frame())
        self._sources += 1
        self.slot.start_source(random.getrandbits(32))

    def stop_source(self, *, drop_waiting: bool = True) -> None:
        """Carry nothing; without `drop_waiting`, the video waiting in the pacer still leaves."""
        self.slot.stop_source(drop_waiting=drop_waiting)

    def close(self) -> None:
        """Send nothing more: the subscriber's connection ended."""
        self.slot.stop_source()
        self.slot.disconnect()

    @property
    def stats(self) -> SlotStats:
        packets, _, frames_sent, frames_dropped, errors, _, _, _ = self.slot.counters()
        first = [*self._first_frames, self._first_frame()] if self._sources else []
        return SlotStats(
            frames_sent=frames_sent,
            frames_dropped=frames_dropped,
            first_frame_keyframe=first,
            packets_sent=packets,
            retransmissions_sent=self._retransmissions,
            send_errors=errors,
        )

    def _first_frame(self) -> bool | None:
        first = self.slot.counters()[7]
        return None if first < 0 else first == 1

    def retransmit(self, sequence_number: int) -> bool:
        """Answer a subscriber's NACK from the history; False when that packet is gone."""
        data = self.slot.sent_packet(sequence_number)
        if data is None:
            return False
        if self._rtx_payload_type is not None:
            size = self._header_size
            header = bytearray(data[:size])
            header[1] = (header[1] & 0x80) | self._rtx_payload_type
            _SEQ.pack_into(header, 2, self._rtx_sequence)
            _SSRC.pack_into(header, 8, self._leg.rtx_ssrc)
            self._rtx_sequence = (self._rtx_sequence + 1) & 0xFFFF
            data = b"".join((header, data[2:4], data[size:]))
        if not self._leg.resend(data):
            return False
        self._retransmissions += 1
        return True
