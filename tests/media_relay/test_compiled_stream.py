"""A publisher's stream received in C (`Stream`) and its connection's datagrams taken in (`Ingest`).

The stream stands in for aiortc's `StreamStatistics` and `NackGenerator` and for the forwarder's
per-packet bookkeeping; these tests hold it to aiortc's answers over random arrivals (loss,
reordering, duplicates, sequence wrap), check each event it raises into Python, and check that the
ingest unprotects, routes, counts and refuses datagrams as aiortc's own path would.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import (
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpPacket,
    RtcpRtpfbPacket,
    RtpPacket,
)
from pylibsrtp import Policy, Session
from pylibsrtp import _binding as srtp_binding

from media_relay._fanout import EstimateFeed, Ingest, Slot, Stream
from media_relay.aiortc_internals import _CompiledStatistics
from media_relay.rtp_fanout import ABS_SEND_TIME_URI, AUDIO_LEVEL_URI
from media_relay.selection import SILENCE, SMOOTHING, STALE_SECONDS, SpeakerTracker

KEY = b"\x90\x80\x05" + b"\x10" + bytes(40)  # a VP8 keyframe's first packet
DELTA = b"\x90\x80\x06" + b"\x11" + bytes(40)
SSRC = 0x5EED
UNPROTECT = int(
    srtp_binding.ffi.cast(
        "uintptr_t", srtp_binding.ffi.addressof(srtp_binding.lib, "srtp_unprotect")
    )
)


def _receive(stream: Stream, sequence: int, **fields: Any) -> None:
    stream.receive(
        fields.get("payload_type", 96),
        fields.get("marker", 0),
        sequence & 0xFFFF,
        fields.get("timestamp", 1000),
        fields.get("ssrc", SSRC),
        fields.get("payload", DELTA),
        fields.get("padding", 0),
        fields.get("abs_send_time", -1),
        fields.get("audio_level", -1),
        fields.get("arrival_ms", 0),
        fields.get("retransmission", False),
    )


def _arrivals(rng: random.Random, count: int, start: int) -> list[int]:
    """Sequence numbers as a network delivers them: lost, reordered, duplicated, wrapping."""
    arrivals: list[int] = []
    sequence = start
    for _ in range(count):
        step = rng.random()
        if step < 0.05:
            sequence += rng.randint(2, 40)  # a loss
        elif step < 0.06:
            sequence += rng.randint(150, 400)  # a long loss, past the NACK window
        else:
            sequence += 1
        arrivals.append(sequence & 0xFFFF)
        if rng.random() < 0.05:
            arrivals.append((sequence - rng.randint(1, 30)) & 0xFFFF)  # late or duplicate
    return arrivals


@pytest.mark.parametrize("seed", range(6))
def test_statistics_and_nacks_are_aiortcs_for_the_same_arrivals(seed):
    rng = random.Random(seed)  # noqa: S311 -- repeatable arrivals, not a secret
    stream = Stream(True)
    stream.restart(SSRC, 90000, True)
    gaps: list[list[int]] = []
    stream.on_gap = gaps.append
    statistics = StreamStatistics(90000)
    compiled = _CompiledStatistics(stream)
    nacks = NackGenerator()
    for number, sequence in enumerate(_arrivals(rng, 3000, rng.randrange(0x10000))):
        packet = RtpPacket(payload_type=96, sequence_number=sequence, timestamp=number * 3000)
        statistics.add(packet)
        gaps_before = len(gaps)
        _receive(stream, sequence, timestamp=number * 3000)
        new_gap = nacks.add(packet)
        assert (len(gaps) > gaps_before) == new_gap, f"packet {number}"
        if new_gap:
            assert sorted(gaps[-1]) == sorted(nacks.missing)
        assert sorted(stream.missing) == sorted(nacks.missing)
        assert (compiled.base_seq, compiled.max_seq, compiled.cycles) == (
            statistics.base_seq,
            statistics.max_seq,
            statistics.cycles,
        )
        assert compiled.packets_received == statistics.packets_received
        assert compiled.packets_lost == statistics.packets_lost
        if number % 97 == 0:  # a receiver report
            assert compiled.fraction_lost == statistics.fraction_lost


def test_a_nack_across_the_wrap_names_the_lost_packets_as_aiortc_sorts_and_packs_them():
    stream = Stream(True)
    stream.restart(SSRC, 90000, True)
    gaps: list[list[int]] = []
    stream.on_gap = gaps.append
    for sequence in (65533, 65534, 1, 2, 0, 4):
        _receive(stream, sequence)
    assert gaps == [[0, 65535], [3, 65535]]  # every packet still missing, in numeric order
    assert stream.missing == [3, 65535]
    for lost in gaps:  # aiortc's packing needs that order (the window's would not pack)
        nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=SSRC, lost=lost)
        assert RtcpPacket.parse(bytes(nack))[0].lost == lost  # type: ignore[union-attr]


def test_retransmissions_fill_gaps_but_count_in_the_rtx_streams_statistics_only():
    stream = Stream(True)
    stream.restart(SSRC, 90000, True)
    for sequence in (10, 11, 13):
        _receive(stream, sequence)
    assert stream.missing == [12]
    _receive(stream, 12, retransmission=True)
    assert stream.missing == []
    assert stream.statistics() == (10, 13, 0, 3, stream.statistics()[4])  # type: ignore[index]


def test_audio_sends_no_nacks_and_a_restart_forgets_the_last_reception():
    audio = Stream(False)
    audio.restart(SSRC, 48000, False)
    gaps: list[list[int]] = []
    audio.on_gap = gaps.append
    for sequence in (1, 5, 9):
        _receive(audio, sequence)
    assert audio.missing == []
    assert gaps == []
    assert audio.statistics()[:4] == (1, 9, 0, 3)  # type: ignore[index]
    audio.restart(SSRC + 1, 48000, False)
    assert audio.ssrc == SSRC + 1
    assert audio.statistics() is None


def test_the_estimators_feed_is_each_frame_end_with_every_byte_since_the_last():
    stream = Stream(True)
    stream.restart(SSRC, 90000, True)
    frames: list[tuple[int, int, int, int]] = []
    stream.on_frame = lambda *frame: frames.append(frame)
    _receive(stream, 1, payload=bytes(100), padding=4, abs_send_time=7)
    _receive(stream, 2, payload=bytes(200), marker=1, abs_send_time=8, arrival_ms=55)
    _receive(stream, 3, payload=bytes(50), marker=1)  # no abs-send-time: its bytes wait
    _receive(stream, 4, payload=bytes(10), marker=1, abs_send_time=9, arrival_ms=70)
    assert frames == [(8, 55, 304, SSRC), (9, 70, 60, SSRC)]


def test_a_connections_feed_paces_the_estimator_over_all_its_video_streams():
    feed = EstimateFeed(60)
    frames: list[tuple[int, int, int, int]] = []
    high, low = Stream(True), Stream(True)
    for ssrc, stream in ((SSRC, high), (SSRC + 1, low)):
        stream.restart(ssrc, 90000, True)
        stream.on_frame = lambda *frame: frames.append(frame)
        stream.feed = feed
    _receive(high, 1, payload=bytes(100), marker=1, abs_send_time=1, arrival_ms=1000)
    _receive(low, 1, payload=bytes(30), marker=1, abs_send_time=2, arrival_ms=1030, ssrc=SSRC + 1)
    _receive(high, 2, payload=bytes(100), marker=1, abs_send_time=3, arrival_ms=1059)
    _receive(low, 2, payload=bytes(30), marker=1, abs_send_time=4, arrival_ms=1060, ssrc=SSRC + 1)
    assert frames == [(1, 1000, 100, SSRC), (4, 1060, 160, SSRC + 1)]
    assert (feed.last_fed_ms, feed.pending_octets) == (1060, 0)


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def __call__(self, packet: bytes) -> bool:
        self.sent.append(packet)
        return True


def _slot(video: bool) -> tuple[Slot, _Recorder]:
    slot = Slot(video=video)
    slot.configure(bytes([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), 100, 0, 0)
    recorder = _Recorder()
    slot.connect_callable(recorder)
    slot.start_source(0)
    return slot, recorder


def test_a_live_stream_forwards_counts_and_asks_for_keyframes_and_switches_in_time():
    stream = Stream(True)
    stream.restart(SSRC, 90000, True)
    slot, recorder = _slot(True)
    stream.fanout = [slot]
    events: list[str] = []
    stream.on_held = lambda: events.append("held")

    def switch() -> None:
        events.append(f"switch with {len(recorder.sent)} sent")
        stream.switching = False

    stream.on_switch = switch
    _receive(stream, 1, payload=DELTA, marker=1)  # not live: not forwarded, still counted
    stream.live = True
    _receive(stream, 2, payload=DELTA, marker=1)  # the slot waits for a keyframe
    stream.switching = True
    _receive(stream, 3, payload=KEY)
    _receive(stream, 4, payload=DELTA, marker=1)
    assert events == ["held", "switch with 0 sent"]
    assert len(recorder.sent) == 2
    assert stream.counters() == (1, 3, 1)  # keyframes, frames received, frames forwarded
    assert stream.take_octets() == 4 * len(DELTA)
    assert stream.take_octets() == 0


def test_only_a_live_audio_streams_levels_are_heard_and_smoothed_as_the_tracker_does():
    stream = Stream(False)
    stream.restart(SSRC, 48000, False)
    stream.fanout = []
    stream.listen(SILENCE, SMOOTHING, STALE_SECONDS)
    _receive(stream, 1, audio_level=0x85)
    assert stream.voice() is None  # not live
    stream.live = True
    tracker = SpeakerTracker()
    before = time.monotonic()
    for sequence, level in enumerate((5, 40, 127, 0), start=2):
        _receive(stream, sequence, audio_level=0x80 | level)
        _receive(stream, sequence + 100)  # no level extension: nothing heard
        tracker.hear("pupil", level, before)
    voice = stream.voice()
    assert voice is not None
    loudness, heard_at = voice
    assert loudness == pytest.approx(tracker.loudness("pupil", before))
    assert before <= heard_at <= time.monotonic()


def test_a_slot_whose_send_fails_costs_the_others_nothing(monkeypatch):
    """A subscriber's send that raises (pylibsrtp refusing a packet, say) is its loss alone."""
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    stream = Stream(False)
    stream.restart(SSRC, 48000, False)

    def refuse(packet: bytes) -> bool:
        raise ZeroDivisionError(len(packet))

    failing, failing_too, working = Slot(video=False), Slot(video=False), _slot(False)
    for slot in (failing, failing_too):
        slot.configure(bytes([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]), 100, 0, 0)
        slot.connect_callable(refuse)
        slot.start_source(0)
    stream.fanout = [failing, working[0], failing_too]
    stream.live = True
    with pytest.raises(ZeroDivisionError):
        _receive(stream, 1)
    assert len(working[1].sent) == 1
    assert stream.counters() == (0, 1, 1)
    assert [slot.counters()[4] for slot in (failing, working[0], failing_too)] == [1, 0, 1]
    assert len(unraisable) == 1  # the second failure; the first was raised


def test_a_switch_that_replaces_the_slot_list_is_read_again():
    stream = Stream(True)
    stream.restart(SSRC, 90000, True)
    stream.live = True
    slot, recorder = _slot(True)
    stream.fanout = []

    def switch() -> None:
        stream.switching = False
        stream.fanout = [slot]

    stream.on_switch = switch
    stream.switching = True
    _receive(stream, 1, payload=KEY)
    assert len(recorder.sent) == 1
    stream.fanout = None  # not a list: nothing is forwarded, nothing breaks
    _receive(stream, 2, payload=DELTA, marker=1)
    assert len(recorder.sent) == 1


def test_a_failing_callback_loses_its_own_event_only(monkeypatch):
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    stream = Stream(True)
    stream.restart(SSRC, 90000, True)
    slot, recorder = _slot(True)
    stream.fanout = [slot]
    stream.live = True

    def fail(*_: object) -> None:
        raise RuntimeError("callback failed")

    _receive(stream, 1, payload=KEY, marker=1, abs_send_time=1)
    stream.on_gap = fail
    stream.on_frame = fail
    with pytest.raises(RuntimeError, match="callback failed"):
        _receive(stream, 3, payload=DELTA, marker=1, abs_send_time=2)  # a gap and a frame
    assert len(recorder.sent) == 2  # forwarded all the same
    assert stream.counters() == (1, 2, 2)
    assert len(unraisable) == 1


def test_bad_calls_are_refused_clearly():
    stream = Stream(True)
    with pytest.raises(ValueError, match="clock rate"):
        stream.restart(SSRC, 0, True)
    with pytest.raises(ValueError, match="too large"):
        _receive(stream, 1, payload=bytes(4000))
    with pytest.raises(TypeError):
        Ingest(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data_received"):
        Ingest(print).data_received("not bytes", 1)  # type: ignore[arg-type]


# The ingest


class _Receiver:
    def __init__(self) -> None:
        self._enabled = True


class _Connection:
    """An SRTP sender and the relay's ingest for it, with what reached each end."""

    def __init__(self) -> None:
        key = bytes(range(30))
        self.protect = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        inbound = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
        self.queued: list[tuple[bytes, int]] = []
        self.ingest = Ingest(lambda data, component: self.queued.append((data, component)))
        context = int(srtp_binding.ffi.cast("uintptr_t", inbound._srtp[0]))
        self.ingest.use_keys(inbound, context, UNPROTECT)
        self.extensions = HeaderExtensionsMap()
        self.extensions.configure(
            type(
                "Parameters",
                (),
                {
                    "headerExtensions": [
                        RTCRtpHeaderExtensionParameters(id=3, uri=ABS_SEND_TIME_URI),
                        RTCRtpHeaderExtensionParameters(id=5, uri=AUDIO_LEVEL_URI),
                    ]
                },
            )()
        )
        self.ingest.use_extensions(3, 5)
        self.receiver = _Receiver()
        self.stream = Stream(True)
        self.stream.restart(SSRC, 90000, True)
        self.packets: list[tuple[Any, ...]] = []
        self.stream.on_packet = lambda *fields: self.packets.append(fields)
        self.codecs: dict[int, Any] = {96: "VP8"}
        self.sequence = 100

    def datagram(self, *, ssrc: int = SSRC, payload_type: int = 96) -> bytes:
        self.sequence += 1
        packet = RtpPacket(
            payload_type=payload_type,
            marker=1,
            sequence_number=self.sequence,
            timestamp=9000,
            ssrc=ssrc,
            payload=b"\x10payload",
        )
        packet.extensions.abs_send_time = 0x123456
        packet.extensions.audio_level = (True, 33)
        return self.protect.protect(packet.serialize(self.extensions))


def test_a_routed_ssrcs_datagrams_reach_its_stream_and_everything_else_is_queued():
    connection = _Connection()
    ingest = connection.ingest
    before = connection.datagram()
    ingest.data_received(before, 1)
    assert connection.queued == [(before, 1)]  # not routed yet: aiortc's own route
    assert ingest.route(SSRC, connection.receiver, connection.codecs, connection.stream)
    assert ingest.routed == [SSRC]
    routed = connection.datagram()
    ingest.data_received(routed, 1)
    assert connection.packets == [
        (96, 1, connection.sequence, 9000, SSRC, b"\x10payload", 0, 0x123456, 0x80 | 33)
    ]
    other = connection.datagram(ssrc=SSRC + 1)
    rtcp = bytes([0x80, 200]) + bytes(26)
    ingest.data_received(other, 1)
    ingest.data_received(rtcp, 1)
    assert connection.queued[1:] == [(other, 1), (rtcp, 1)]
    assert ingest.take_counts() == (len(routed), 1)
    assert ingest.take_counts() == (0, 0)


def test_the_ingest_drops_what_aiortc_drops_and_gives_an_ssrc_back_when_unrouted():
    connection = _Connection()
    ingest = connection.ingest
    ingest.route(SSRC, connection.receiver, connection.codecs, connection.stream)
    tampered = bytearray(connection.datagram())
    tampered[-1] ^= 1
    ingest.data_received(bytes(tampered), 1)
    ingest.data_received(connection.datagram(payload_type=100), 1)  # no such codec
    connection.receiver._enabled = False
    ingest.data_received(connection.datagram(), 1)
    assert connection.packets == []
    assert connection.queued == []
    connection.receiver._enabled = True
    ingest.unroute(connection.receiver)
    assert ingest.routed == []
    again = connection.datagram()
    ingest.data_received(again, 1)
    assert connection.queued == [(again, 1)]


def test_a_stream_restarted_on_a_new_ssrc_no_longer_takes_the_old_ones_packets():
    connection = _Connection()
    ingest = connection.ingest
    ingest.route(SSRC, connection.receiver, connection.codecs, connection.stream)
    connection.stream.restart(SSRC + 1, 90000, True)
    ingest.route(SSRC + 1, connection.receiver, connection.codecs, connection.stream)
    assert ingest.routed == [SSRC + 1]
    old = connection.datagram()
    ingest.data_received(old, 1)
    assert connection.packets == []
    assert connection.queued == [(old, 1)]


def test_the_ingest_routes_at_most_sixteen_ssrcs_and_the_rest_take_aiortcs_route():
    connection = _Connection()
    routes = [
        connection.ingest.route(SSRC + n, connection.receiver, connection.codecs, Stream(False))
        for n in range(17)
    ]
    assert routes == [True] * 16 + [False]
    # Routing an SSRC again replaces its stream, taking no new place.
    assert connection.ingest.route(SSRC, connection.receiver, connection.codecs, connection.stream)
    assert len(connection.ingest.routed) == 16


def test_without_keys_the_ingest_queues_everything():
    queued: list[bytes] = []
    ingest = Ingest(lambda data, _: queued.append(data))
    ingest.route(SSRC, _Receiver(), {96: "VP8"}, Stream(True))
    datagram = _Connection().datagram()
    ingest.data_received(datagram, 1)
    assert queued == [datagram]
