"""A read batch's video, sent a subscriber at a time by UDP GSO (`_fanout.c`, "Sending a read
batch's video").

While `read_datagrams` hands a batch of publisher datagrams on (or the pacer sends a chunk), a
socket slot's video datagrams are protected in order and held; when the batch ends each slot's
leave in as few `sendmsg` calls as GSO allows. These tests drive real sockets on loopback: every
datagram must arrive, authenticate with the subscriber's key and keep its order, in fewer sends
than datagrams; audio never waits; a slot whose socket changes mid-batch sends what it holds
first; a kernel that refuses GSO still gets every datagram, one by one.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiortc.rtp import RtpPacket
from pylibsrtp import Policy, Session
from pylibsrtp import _binding as srtp_binding

from media_relay import _fanout, pacing
from media_relay._fanout import read_datagrams
from media_relay.rtp_fanout import Kind, SlotOutput, fan_out
from tests.media_relay.test_fanout import KEY, KEY_REST, RecordingLeg, _parameters, _parse

KEY_MATERIAL = bytes(range(30))  # AES_CM_128_HMAC_SHA1_80: 16 bytes of key, 14 of salt
COMPONENT = 1
SO_NO_CHECK = 11  # Linux: no UDP checksum on send, which UDP GSO refuses (EINVAL)


@dataclass
class Subscriber:
    """A socket slot and the subscriber's end of its socket."""

    output: SlotOutput
    session: Session
    sending: socket.socket
    receiving: socket.socket

    def received(self) -> list[RtpPacket]:
        """Every datagram waiting, SRTP-unprotected with the subscriber's key, in arrival order."""
        inbound = Session(Policy(key=KEY_MATERIAL, ssrc_type=Policy.SSRC_ANY_INBOUND))
        packets: list[RtpPacket] = []
        while True:
            try:
                datagram = self.receiving.recv(4096)
            except BlockingIOError:
                return packets
            packets.append(_parse(inbound.unprotect(datagram)))


@pytest.fixture
def subscribers() -> Iterator[Callable[[Kind], Subscriber]]:
    made: list[Subscriber] = []

    def make(kind: Kind) -> Subscriber:
        output = SlotOutput(kind, RecordingLeg())
        output.configure(_parameters(kind))
        output.start_source()
        session = Session(Policy(key=KEY_MATERIAL, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        sending = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiving = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiving.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        receiving.bind(("127.0.0.1", 0))
        receiving.setblocking(False)
        ffi, lib = srtp_binding.ffi, srtp_binding.lib
        output.slot.connect_socket(
            session,
            int(ffi.cast("uintptr_t", session._srtp[0])),
            int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect"))),
            sending.fileno(),
            *receiving.getsockname(),
        )
        subscriber = Subscriber(output, session, sending, receiving)
        made.append(subscriber)
        return subscriber

    yield make
    _fanout.use_gso(True)
    for subscriber in made:
        subscriber.output.close()
        subscriber.sending.close()
        subscriber.receiving.close()


class Publisher:
    """Stands in for aioice: its `data_received` fans each datagram out, as the relay's does."""

    def __init__(self, kind: Kind, slots: list[Any]) -> None:
        self.kind = kind
        self.slots = slots
        self.during: Callable[[int], None] = lambda index: None
        self.handed = 0

    def data_received(self, data: bytes, component: int) -> None:
        fan_out(self.kind, _parse(data), self.slots)
        self.during(self.handed)
        self.handed += 1

    def datagram_received(self, data: bytes, address: tuple[Any, ...]) -> None:
        raise AssertionError("only RTP is sent")


def _read_batch(packets: list[RtpPacket], publisher: Publisher) -> None:
    """Send `packets` to a socket and hand them on in one `read_datagrams` batch."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiving,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sending,
    ):
        receiving.bind(("127.0.0.1", 0))
        receiving.setblocking(False)
        sending.connect(receiving.getsockname())
        for packet in packets:
            sending.send(packet.serialize())
        read_datagrams(receiving.fileno(), publisher, publisher, COMPONENT)
    assert publisher.handed == len(packets)


def _packet(seq: int, payload: bytes, *, marker: int = 0) -> RtpPacket:
    return RtpPacket(
        payload_type=96, marker=marker, sequence_number=seq, timestamp=9000, payload=payload
    )


def _frame(first_seq: int, sizes: list[int]) -> list[RtpPacket]:
    """A keyframe whose packets' payloads are `sizes` bytes long."""
    return [
        _packet(
            first_seq + i,
            (KEY if i == 0 else KEY_REST).ljust(size, b"\x07"),
            marker=int(i == len(sizes) - 1),
        )
        for i, size in enumerate(sizes)
    ]


def _counted(action: Callable[[], object]) -> tuple[int, int, int, int]:
    """What `action` added to the compiled loop's send counters."""
    before = _fanout.send_counters()
    action()
    after = _fanout.send_counters()
    datagrams, sends, gso_sends, refused = (a - b for a, b in zip(after, before, strict=True))
    return datagrams, sends, gso_sends, refused


@pytest.fixture(autouse=True)
def unpaced() -> Iterator[None]:
    """No budget: a test's datagrams are sent at once unless it paces them itself."""
    pacing.configure(rate_bits_per_second=0)
    yield
    pacing.configure()


def test_a_batchs_video_leaves_each_subscriber_in_one_gso_send_whole_and_in_order(subscribers):
    ada, bob = subscribers("video"), subscribers("video")
    publisher = Publisher("video", [ada.output.slot, bob.output.slot])
    frame = _frame(100, [1000] * 5 + [300])
    datagrams, sends, gso_sends, refused = _counted(lambda: _read_batch(frame, publisher))
    assert (datagrams, sends, gso_sends, refused) == (12, 2, 2, 0)
    for subscriber in (ada, bob):
        received = subscriber.received()
        assert [p.payload for p in received] == [p.payload for p in frame]
        first = received[0].sequence_number
        assert [p.sequence_number for p in received] == [first + i for i in range(6)]
        assert [p.marker for p in received] == [0] * 5 + [1]
        assert subscriber.output.stats.packets_sent == 6
        assert subscriber.output.stats.send_errors == 0
        # Held datagrams were sent as they count: the history answers a NACK for each.
        assert subscriber.output.retransmit(first + 2) is True


def test_sizes_gso_cannot_carry_in_one_send_split_it_where_they_change(subscribers):
    """Every datagram of a GSO send but the last is of one size, the last no larger: a browser's
    packetizer makes a frame's later packets a byte longer, which starts another send."""
    ada = subscribers("video")
    publisher = Publisher("video", [ada.output.slot])
    frame = _frame(7, [900, 900, 901, 901, 901, 200, 200])
    datagrams, sends, gso_sends, _ = _counted(lambda: _read_batch(frame, publisher))
    # [900, 900], [901, 901, 901, 200], [200]
    assert (datagrams, sends, gso_sends) == (7, 3, 2)
    assert [p.payload for p in ada.received()] == [p.payload for p in frame]


def test_audio_is_never_held(subscribers):
    ada = subscribers("audio")
    publisher = Publisher("audio", [ada.output.slot])
    packets = [_packet(seq, b"opus" * 20, marker=1) for seq in range(1, 5)]
    publisher.during = lambda index: _assert_arrived(ada, index + 1)
    datagrams, sends, gso_sends, _ = _counted(lambda: _read_batch(packets, publisher))
    assert (datagrams, sends, gso_sends) == (4, 4, 0)


def _assert_arrived(subscriber: Subscriber, count: int) -> None:
    assert len(subscriber.received()) == 1, f"datagram {count} was not sent at once"


def test_a_slot_whose_socket_goes_mid_batch_sends_what_it_holds_first(subscribers):
    ada = subscribers("video")
    publisher = Publisher("video", [ada.output.slot])
    frame = _frame(50, [800] * 6)

    def disconnect_after_the_third(index: int) -> None:
        if index == 2:
            ada.output.slot.disconnect()

    publisher.during = disconnect_after_the_third
    references = sys.getrefcount(ada.output.slot)
    datagrams, sends, _, _ = _counted(lambda: _read_batch(frame, publisher))
    assert (datagrams, sends) == (3, 1)
    assert [p.payload for p in ada.received()] == [p.payload for p in frame[:3]]
    assert ada.output.stats.packets_sent == 3
    # The stage keeps no reference once it has sent what it held. (Counted outside the assert:
    # pytest's rewritten asserts hold references of their own.)
    after = sys.getrefcount(ada.output.slot)
    assert after == references


def test_a_kernel_refusing_gso_still_gets_every_datagram_one_by_one(subscribers):
    ada = subscribers("video")
    ada.sending.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
    publisher = Publisher("video", [ada.output.slot])
    frame = _frame(300, [700] * 4)
    datagrams, sends, gso_sends, refused = _counted(lambda: _read_batch(frame, publisher))
    assert (datagrams, sends, gso_sends, refused) == (4, 4, 0, 1)
    assert [p.payload for p in ada.received()] == [p.payload for p in frame]
    assert ada.output.stats.send_errors == 0


def test_with_gso_off_each_datagram_is_a_send_of_its_own(subscribers):
    ada = subscribers("video")
    publisher = Publisher("video", [ada.output.slot])
    _fanout.use_gso(False)
    frame = _frame(1, [600] * 4)
    datagrams, sends, gso_sends, _ = _counted(lambda: _read_batch(frame, publisher))
    assert (datagrams, sends, gso_sends) == (4, 4, 0)
    assert [p.payload for p in ada.received()] == [p.payload for p in frame]


@pytest.mark.asyncio
async def test_the_pacers_chunk_leaves_a_subscriber_at_a_time(subscribers):
    ada, bob = subscribers("video"), subscribers("video")
    slots = [ada.output.slot, bob.output.slot]
    # 1 kB/s and a burst of one datagram: all but the first of each keyframe wait.
    pacing.configure(rate_bits_per_second=8 * 1000, burst_seconds=1.0)
    frame = _frame(20, [1000] * 8)
    # One by one, outside any batch; the drain they schedule has no turn before the flush.
    for packet in frame:
        fan_out("video", packet, slots)
    waiting = pacing.counters().waiting
    assert waiting == 2 * 8 - 1
    datagrams, sends, gso_sends, _ = _counted(pacing.flush)
    # ada's 7 and bob's 8, whatever order they waited in: one send each.
    assert (datagrams, sends, gso_sends) == (waiting, 2, 2)
    for subscriber in (ada, bob):
        assert [p.payload for p in subscriber.received()] == [p.payload for p in frame]
