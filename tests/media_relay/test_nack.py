"""Lost video packets are recovered through the relay: it answers NACKs and sends its own.

A subscriber that reports a packet lost (RTCP NACK) gets it again from the relay, and a packet the
publisher sent that never reached the relay is asked for again by the relay. What crosses each
synthetic participant's network is read at its own DTLS transport (plain RTP, before SRTP), the
browser's side of the wire: nothing here depends on how the relay's senders are built, so the
tests hold whatever the relay's send path becomes.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from aiortc.rtp import RtpPacket, is_rtcp

from media_relay.forwarding import Source
from tests.media_relay.peers import SyntheticLesson, SyntheticParticipant, wait_for

pytestmark = pytest.mark.asyncio


class Wire:
    """The RTP a synthetic participant sends and receives, seen at its (bundled) DTLS transport.

    `drop` decides, for each packet about to be sent, whether the network loses it. The transport's
    `_send_rtp` and `_handle_rtp_data` (aiortc 1.16) carry every RTP packet of the connection
    unencrypted; wrapping them is the only reach into aiortc here, on the participant's side.
    """

    def __init__(self, participant: SyntheticParticipant) -> None:
        self.sent: list[RtpPacket] = []
        self.received: list[RtpPacket] = []
        self.drop: Callable[[RtpPacket], bool] = lambda packet: False
        transport = participant.mic.sender.transport
        send, handle = transport._send_rtp, transport._handle_rtp_data

        async def send_rtp(data: bytes) -> None:
            if not is_rtcp(data):
                packet = RtpPacket.parse(data)
                if self.drop(packet):
                    return
                self.sent.append(packet)
            await send(data)

        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            self.received.append(RtpPacket.parse(data))
            await handle(data, arrival_time_ms)

        transport._send_rtp = send_rtp  # type: ignore[method-assign]
        transport._handle_rtp_data = handle_rtp_data  # type: ignore[method-assign]


def copies(packets: list[RtpPacket], *, ssrc: int, sequence_number: int, rtx: int) -> int:
    """How often a media packet crossed: itself, or resent (the same again, or RTX-wrapped)."""
    return sum(
        1
        for packet in packets
        if (packet.ssrc, packet.sequence_number) == (ssrc, sequence_number)
        or (
            packet.payload_type == rtx
            and packet.ssrc != ssrc
            and struct.unpack("!H", packet.payload[:2])[0] == sequence_number
        )
    )


def vp8_payload_types(sdp: str, mid: str) -> tuple[int, int]:
    """The payload types of VP8 and of its RTX in the media section of `mid`."""
    for section in sdp.split("\nm=")[1:]:
        lines = section.splitlines()
        if f"a=mid:{mid}" not in lines:
            continue
        vp8 = next(
            int(line.split()[0].removeprefix("a=rtpmap:"))
            for line in lines
            if line.startswith("a=rtpmap:") and line.split()[1].upper() == "VP8/90000"
        )
        rtx = next(
            int(line.split()[0].removeprefix("a=fmtp:"))
            for line in lines
            if line.startswith("a=fmtp:") and line.split()[1] == f"apt={vp8}"
        )
        return vp8, rtx
    raise AssertionError(f"no media section {mid!r}")


class Lesson(SyntheticLesson):
    async def join(self, name: str, *forwarding: Source) -> SyntheticParticipant:
        for source in forwarding:
            self.forwarder.set_forwarding(name, source, True)
        return await self.add(SyntheticParticipant(name, send_audio=False))

    def camera_slot(self, subscriber: str, publisher: str) -> str:
        return self.mid(subscriber, publisher, "camera")


@pytest_asyncio.fixture
async def lesson() -> AsyncIterator[Lesson]:
    lesson = Lesson()
    yield lesson
    await lesson.close()


async def test_a_subscriber_s_nack_is_answered_with_the_packet_again(lesson):
    await lesson.join("a", "camera")
    b = await lesson.join("b")
    wire = Wire(b)
    mid = lesson.camera_slot("b", "a")
    reception = b.reception(mid)
    await wait_for(lambda: reception.decoded_frames >= 3, within=10)
    slot = next(t for t in b.receptions if t.mid == mid)
    ssrc = b.taps[slot].media_ssrc
    assert ssrc is not None
    _, rtx = vp8_payload_types(b.pc.localDescription.sdp, mid)
    await wait_for(lambda: any(p.ssrc == ssrc for p in wire.received))
    # A packet that arrived once, as the relay sent it.
    lost = max(p.sequence_number for p in wire.received if p.ssrc == ssrc)
    assert copies(wire.received, ssrc=ssrc, sequence_number=lost, rtx=rtx) == 1

    # The browser's receiver reports it lost, as it does for a gap.
    await slot.receiver._send_rtcp_nack(ssrc, [lost])

    await wait_for(lambda: copies(wire.received, ssrc=ssrc, sequence_number=lost, rtx=rtx) >= 2)


async def test_the_relay_asks_the_publisher_again_for_a_packet_lost_on_the_way_in(lesson):
    a = await lesson.join("a", "camera")
    b = await lesson.join("b")
    wire = Wire(a)
    vp8, rtx = vp8_payload_types(a.pc.localDescription.sdp, a.camera.mid or "")
    reception = b.reception(lesson.camera_slot("b", "a"))
    await wait_for(lambda: reception.decoded_frames >= 3, within=10)
    dropped: list[RtpPacket] = []

    def lose_one(packet: RtpPacket) -> bool:
        if dropped or packet.payload_type != vp8:
            return False
        dropped.append(packet)
        return True

    wire.drop = lose_one
    await wait_for(lambda: bool(dropped))
    [lost] = dropped

    # The network lost its only copy; aiortc's sender resends a packet only when its peer NACKs
    # it: the relay did.
    await wait_for(
        lambda: (
            copies(wire.sent, ssrc=lost.ssrc, sequence_number=lost.sequence_number, rtx=rtx) == 1
        )
    )
    # And the picture goes on at the subscriber.
    decoded = reception.decoded_frames
    await wait_for(lambda: reception.decoded_frames >= decoded + 3)
