"""The video pacer: past its budget video waits, in order, and audio goes ahead of it.

Most tests drive the compiled fan-out loop directly with slots whose legs record what they are
given (as in test_fanout.py), on a running event loop so the pacer drains a chunk per loop turn.
The last one runs a lesson over this machine's network with a budget below the camera's bitrate.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import Callable, Iterator

import pytest
from aiortc.rtp import RtpPacket
from pylibsrtp import Policy, Session
from pylibsrtp import _binding as srtp_binding

from media_relay import pacing
from media_relay.rtp_fanout import Fanned, Kind, SlotOutput, fan_out
from tests.media_relay.peers import wait_for
from tests.media_relay.test_fanout import DELTA, KEY, KEY_REST, RecordingLeg, _parameters, _parse
from tests.media_relay.test_forwarding import Lesson

DATAGRAM = 80  # bytes: the tests' RTP header (24) and payload (~44), rounded up


class Recorder(RecordingLeg):
    """A leg that also writes what it sends, with its slot's name, into a log shared by slots."""

    def __init__(self, name: str, log: list[tuple[str, bytes]]) -> None:
        super().__init__()
        self.name = name
        self.log = log

    def _send(self, packet: bytes) -> bool:
        self.log.append((self.name, packet))
        return super()._send(packet)


@pytest.fixture(autouse=True)
def budget() -> Iterator[None]:
    """Each test sets its own budget; afterwards nothing waits and the default is back."""
    yield
    pacing.configure()


def _slot(kind: Kind, name: str, log: list[tuple[str, bytes]]) -> tuple[SlotOutput, Recorder]:
    leg = Recorder(name, log)
    output = SlotOutput(kind, leg)
    output.configure(_parameters(kind))
    output.start_source()
    return output, leg


def _packet(seq: int, payload: bytes, *, marker: int = 0) -> RtpPacket:
    return RtpPacket(
        payload_type=96,
        marker=marker,
        sequence_number=seq,
        timestamp=seq // 20 * 3000,
        payload=payload,
    )


def _keyframe(first_seq: int, packets: int) -> list[RtpPacket]:
    """A keyframe of `packets` packets, numbered from `first_seq`."""
    return [
        _packet(first_seq + i, KEY if i == 0 else KEY_REST, marker=int(i == packets - 1))
        for i in range(packets)
    ]


def _sequence_numbers(leg: RecordingLeg) -> list[int]:
    return [_parse(data).sequence_number for data in leg.sent]


async def _turns_until(condition_met: Callable[[], bool], *, most: int = 10_000) -> int:
    """Let the loop turn until `condition_met()`; return how many turns it took."""
    for turn in range(most):
        if condition_met():
            return turn
        await asyncio.sleep(0)
    raise AssertionError("the pacer did not drain")


@pytest.mark.asyncio
async def test_audio_goes_out_at_once_ahead_of_waiting_video():
    pacing.configure(rate_bits_per_second=8 * 1000, burst_seconds=0.001)  # 1 kB/s: video waits
    log: list[tuple[str, bytes]] = []
    video, _ = _slot("video", "video", log)
    audio, _ = _slot("audio", "audio", log)
    for packet in _keyframe(100, 5):
        assert fan_out("video", packet, [video.slot]).sent == 1  # accepted, sent or waiting
    audio_packet = _packet(7, b"opus", marker=1)
    assert fan_out("audio", audio_packet, [audio.slot]).sent == 1
    assert pacing.counters().waiting == 4
    assert [name for name, _ in log] == ["video", "audio"]

    pacing.flush()
    assert [name for name, _ in log] == ["video", "audio", "video", "video", "video", "video"]


@pytest.mark.asyncio
async def test_a_burst_past_the_budget_goes_out_in_order_over_several_loop_turns(monkeypatch):
    monkeypatch.setattr(pacing, "CHUNK", 8)
    # 4 datagrams at once, then 400 kB/s: 120 datagrams take ~25 ms.
    pacing.configure(rate_bits_per_second=8 * 400_000, burst_seconds=4 * DATAGRAM / 400_000)
    log: list[tuple[str, bytes]] = []
    slots = [_slot("video", name, log) for name in ("ada", "bob", "cem")]
    for packet in _keyframe(1000, 40):
        assert fan_out("video", packet, [output.slot for output, _ in slots]) == Fanned(
            3, 0, keyframe_start=packet.payload == KEY, frame_end=bool(packet.marker)
        )
    assert len(log) < 120

    turns = await _turns_until(lambda: len(log) == 120)
    assert turns > 120 // 8  # a chunk per turn at most, and the budget waited for between
    for output, leg in slots:
        numbers = _sequence_numbers(leg)
        assert [(n - numbers[0]) & 0xFFFF for n in numbers] == list(range(40))
        assert [_parse(data).payload for data in leg.sent] == [KEY] + [KEY_REST] * 39
        assert output.stats.packets_sent == 40
        # The history holds what waited, under the numbers it was sent with.
        assert output.retransmit(numbers[-1]) is True
    assert pacing.counters().waiting == 0


class Refusing(Recorder):
    """A subscriber whose send raises (pylibsrtp refusing a packet, say)."""

    def _send(self, packet: bytes) -> bool:
        raise ValueError("packet is too long")


@pytest.mark.asyncio
async def test_a_waiting_datagram_whose_send_fails_does_not_stop_the_others(caplog):
    pacing.configure(rate_bits_per_second=8 * 400_000, burst_seconds=DATAGRAM / 400_000)
    log: list[tuple[str, bytes]] = []
    refusing = SlotOutput("video", Refusing("refusing", log))
    refusing.configure(_parameters("video"))
    refusing.start_source()
    working, leg = _slot("video", "working", log)
    for packet in _keyframe(500, 10):
        # Sent at once (within the burst), the refusal is raised once the others had theirs.
        with contextlib.suppress(ValueError):
            fan_out("video", packet, [refusing.slot, working.slot])
    assert pacing.counters().waiting > 0
    await _turns_until(lambda: len(leg.sent) == 10)
    assert pacing.counters().waiting == 0
    assert refusing.stats.send_errors == 10
    assert "could not be sent" in caplog.text


def test_a_datagram_srtp_refuses_is_one_send_error_sent_at_once_or_after_waiting():
    """A slot sending on its own socket whose SRTP session has no context for its SSRC: each
    datagram is counted once as a send error, whether it left at once or waited in the pacer."""
    pacing.configure(rate_bits_per_second=8 * 1000, burst_seconds=DATAGRAM / 1000)
    # Outbound for one SSRC only, which is not the slot's: libsrtp refuses every packet.
    session = Session(Policy(key=bytes(30), ssrc_type=Policy.SSRC_SPECIFIC, ssrc_value=0xDEAD))
    ffi, lib = srtp_binding.ffi, srtp_binding.lib
    output, _ = _slot("video", "refused", [])
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener,
    ):
        listener.bind(("127.0.0.1", 0))
        listener.setblocking(False)
        output.slot.connect_socket(
            session,
            int(ffi.cast("uintptr_t", session._srtp[0])),
            int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect"))),
            udp.fileno(),
            *listener.getsockname(),
        )
        queued_before = pacing.counters().queued
        for packet in _keyframe(300, 6):
            fan_out("video", packet, [output.slot])  # no loop running: what waits is sent now
        queued = pacing.counters().queued - queued_before
        assert 0 < queued < 6  # the first went at once, the rest waited
        with pytest.raises(BlockingIOError):
            listener.recv(2048)  # nothing left
    assert output.stats.send_errors == 6
    # None counts as sent, and none can be resent from the history.
    assert output.stats.packets_sent == 0
    assert output.retransmit(output.slot.last_seq) is False


@pytest.mark.asyncio
async def test_a_slot_stopped_while_its_video_waits_sends_none_of_it_and_cannot_resend_it():
    pacing.configure(rate_bits_per_second=8 * 1000, burst_seconds=0.001)
    log: list[tuple[str, bytes]] = []
    (stopped, stopped_leg), (other, other_leg) = (_slot("video", n, log) for n in ("ada", "bob"))
    for packet in _keyframe(10, 6):
        fan_out("video", packet, [stopped.slot, other.slot])
    [sent_before] = stopped_leg.sent  # the budget let one datagram through
    dropped_before = pacing.counters().stopped_dropped

    stopped.stop_source()
    assert pacing.counters().stopped_dropped == dropped_before + 5
    pacing.flush()
    assert stopped_leg.sent == [sent_before]
    assert len(other_leg.sent) == 6
    first = _parse(sent_before).sequence_number
    assert stopped.retransmit(first) is True
    assert not any(stopped.retransmit((first + i) & 0xFFFF) for i in range(1, 6))
    assert stopped.stats.packets_sent == 1


@pytest.mark.asyncio
async def test_a_slot_switched_to_another_source_sends_what_waited_first_with_no_gap():
    """A speaker change or a layer switch: the old source's waiting video still leaves, in order,
    and the new source's keyframe is numbered on from it. Nothing is lost, nothing is dropped."""
    pacing.configure(rate_bits_per_second=8 * 1000, burst_seconds=0.001)
    log: list[tuple[str, bytes]] = []
    output, leg = _slot("video", "ada", log)
    for packet in _keyframe(10, 6):
        fan_out("video", packet, [output.slot])
    assert pacing.counters().waiting == 5  # the budget let one datagram through
    dropped_before = pacing.counters().stopped_dropped

    output.start_source()  # another publisher's camera from its next keyframe
    for packet in _keyframe(7000, 3):
        fan_out("video", packet, [output.slot])
    pacing.flush()
    assert pacing.counters().stopped_dropped == dropped_before
    numbers = _sequence_numbers(leg)
    first = numbers[0]
    assert [(n - first) & 0xFFFF for n in numbers] == list(range(9))
    payloads = [_parse(data).payload for data in leg.sent]
    assert payloads == [KEY, *[KEY_REST] * 5, KEY, KEY_REST, KEY_REST]
    timestamps = [_parse(data).timestamp for data in leg.sent]
    assert timestamps == sorted(timestamps)
    assert output.stats.packets_sent == 9
    assert output.retransmit((first + 3) & 0xFFFF) is True  # the old source's, sent after waiting


@pytest.mark.asyncio
async def test_closing_a_slot_whose_video_waits_is_safe_and_releases_what_waited():
    pacing.configure(rate_bits_per_second=8 * 1000, burst_seconds=0.001)
    log: list[tuple[str, bytes]] = []
    output, leg = _slot("video", "ada", log)
    payload = DELTA + bytes(500)
    slot_references = sys.getrefcount(output.slot)
    fan_out("video", _packet(1, KEY), [output.slot])
    payload_references = sys.getrefcount(payload)
    for seq in range(2, 12):
        fan_out("video", _packet(seq, payload), [output.slot])
    # Counted outside the asserts: pytest's rewritten asserts hold references of their own.
    waiting_references = sys.getrefcount(output.slot)
    assert waiting_references == slot_references + 10  # each waiting datagram holds the slot

    output.close()
    closed_references = sys.getrefcount(output.slot), sys.getrefcount(payload)
    # Neither the queue nor the history keeps what never left.
    assert closed_references == (slot_references, payload_references)
    assert pacing.flush() == 0
    assert len(leg.sent) == 1


@pytest.mark.asyncio
async def test_a_full_queue_drops_the_oldest_video_counts_it_and_the_history_can_resend_it():
    pacing.configure(rate_bits_per_second=8 * 1000, burst_seconds=0.001, capacity=8)
    log: list[tuple[str, bytes]] = []
    output, leg = _slot("video", "ada", log)
    overflow_before = pacing.counters().overflow_dropped
    for packet in _keyframe(500, 20):
        fan_out("video", packet, [output.slot])
    assert pacing.counters().overflow_dropped == overflow_before + 11  # 1 sent, 8 wait, 11 lost

    pacing.flush()
    numbers = _sequence_numbers(leg)
    first = numbers[0]
    assert [(n - first) & 0xFFFF for n in numbers] == [0, *range(12, 20)]
    assert output.retransmit((first + 1) & 0xFFFF) is True  # a lost one, asked for by a NACK
    [resent] = leg.resent
    assert _parse(resent).payload_type == 98  # RTX


def test_with_no_running_loop_waiting_video_goes_out_at_once():
    """Outside the event loop there are no turns to wait for."""
    pacing.configure(rate_bits_per_second=8 * 1000, burst_seconds=0.001)
    log: list[tuple[str, bytes]] = []
    output, leg = _slot("video", "ada", log)
    for packet in _keyframe(1, 5):
        fan_out("video", packet, [output.slot])
    assert len(leg.sent) == 5
    assert pacing.counters().waiting == 0


@pytest.mark.asyncio
async def test_with_pacing_off_a_keyframe_leaves_at_once():
    pacing.configure(rate_bits_per_second=0)
    log: list[tuple[str, bytes]] = []
    output, leg = _slot("video", "ada", log)
    queued_before = pacing.counters().queued
    for packet in _keyframe(1, 50):
        fan_out("video", packet, [output.slot])
    assert len(leg.sent) == 50
    assert pacing.counters().queued == queued_before


@pytest.mark.asyncio
async def test_paced_video_on_real_sockets_decodes_and_a_stopped_camera_sends_nothing_more():
    # Below the test camera's bitrate: video waits all the time, so the stop finds some waiting.
    pacing.configure(rate_bits_per_second=16_000, burst_seconds=0.05)
    lesson = Lesson()
    try:
        await lesson.join("a", "mic", "camera")
        b = await lesson.join("b")
        video = lesson.mid("b", "a", "camera")
        decoded = lesson.decoded("b", "a", "camera")
        await wait_for(lambda: decoded() >= 3, within=15)
        await wait_for(lambda: pacing.counters().waiting > 0)
        dropped = pacing.counters().stopped_dropped

        lesson.forwarder.set_forwarding("a", "camera", False)
        assert pacing.counters().stopped_dropped > dropped
        await asyncio.sleep(0.2)  # what had left reaches b
        stopped = await b.packets_received(video)
        await asyncio.sleep(1)
        assert await b.packets_received(video) == stopped
        assert lesson.decoded("b", "a", "mic")() > 0  # audio was never held back
    finally:
        await lesson.close()
