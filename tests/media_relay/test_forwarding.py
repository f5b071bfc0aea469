"""The lesson forwarder, with synthetic aiortc participants connected over this machine's network.

Each participant offers like the class page; the forwarder answers and forwards encoded frames
between them. What a subscriber decodes proves that what it got is valid VP8 and Opus.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from aiortc import RTCIceTransport

from media_relay.forwarding import (
    CONNECT_TIMEOUT,
    KEYFRAME_REQUEST_INTERVAL,
    NegotiationError,
)
from tests.media_relay.peers import (
    RecordedCallbacks,
    SyntheticLesson,
    SyntheticParticipant,
    wait_for,
)


class Lesson(SyntheticLesson):
    def __init__(self, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        callbacks = RecordedCallbacks()
        super().__init__(callbacks, callbacks.forwarder(connect_timeout=connect_timeout))

    async def join(self, name: str, *forwarding: str, **options: int) -> SyntheticParticipant:
        """A participant joins; its listed sources (mic, camera) are forwarded."""
        for source in forwarding:
            self.forwarder.set_forwarding(name, source, True)  # type: ignore[arg-type]
        return await self.add(SyntheticParticipant(name, **options))  # type: ignore[arg-type]

    def decoded(self, subscriber: str, publisher: str, source: str) -> Callable[[], int]:
        """How many frames of the publisher's source the subscriber has decoded so far."""
        reception = self.participants[subscriber].reception(self.mid(subscriber, publisher, source))
        return lambda: reception.decoded_frames


@pytest_asyncio.fixture
async def lesson() -> AsyncIterator[Lesson]:
    lesson = Lesson()
    yield lesson
    await lesson.close()


async def _flowing(counter: Callable[[], int], frames: int = 3) -> None:
    start = counter()
    await wait_for(lambda: counter() >= start + frames)


@pytest.mark.asyncio
async def test_a_participants_camera_and_microphone_reach_everyone_else(lesson):
    await lesson.join("a", "mic", "camera")
    await lesson.join("b")
    await lesson.join("c")
    for subscriber in ("b", "c"):
        await _flowing(lesson.decoded(subscriber, "a", "camera"))
        await _flowing(lesson.decoded(subscriber, "a", "mic"))
    assert all(track is None for track in lesson.callbacks.tracks["a"].values())
    assert ("a", "connected") in lesson.callbacks.peer_states
    stats = lesson.forwarder.stats()
    assert stats.sources[("a", "camera")].frames_forwarded > 0
    assert stats.sources[("a", "mic")].frames_forwarded > 0


@pytest.mark.asyncio
async def test_each_peer_connection_is_reported_connected_once(lesson):
    await lesson.join("a", "mic")
    await lesson.join("b")
    await _flowing(lesson.decoded("b", "a", "mic"))
    await asyncio.sleep(0.2)
    assert sorted(lesson.callbacks.peer_states) == [("a", "connected"), ("b", "connected")]


@pytest.mark.asyncio
async def test_the_answer_negotiates_only_vp8_and_opus(lesson):
    participant = SyntheticParticipant("a")
    lesson.participants["a"] = participant
    sdp, sources = await participant.offer()
    assert "H264" in sdp
    answer = await lesson.forwarder.negotiate("a", sdp, sources)
    codecs = {line.split()[1].split("/")[0] for line in answer.splitlines() if "rtpmap" in line}
    assert codecs == {"opus", "VP8", "rtx"}


@pytest.mark.asyncio
async def test_a_new_subscriber_gets_a_keyframe_first(lesson):
    """Joining asks the publisher for a keyframe, and the subscriber's first frame is one."""
    a = await lesson.join("a", "camera")
    await lesson.join("b")
    await _flowing(lesson.decoded("b", "a", "camera"))
    await asyncio.sleep(KEYFRAME_REQUEST_INTERVAL)
    requests_before = a.keyframe_requests
    c = await lesson.join("c")
    await _flowing(lesson.decoded("c", "a", "camera"))
    assert c.reception(lesson.mid("c", "a", "camera")).first_frame_keyframe is True
    assert a.keyframe_requests > requests_before
    assert lesson.forwarder.stats().slots[
        ("c", lesson.mid("c", "a", "camera"))
    ].first_frame_keyframe == [True]


@pytest.mark.asyncio
async def test_subscriber_picture_loss_reaches_the_publisher_rate_limited(lesson):
    a = await lesson.join("a", "camera")
    b = await lesson.join("b")
    mid = lesson.mid("b", "a", "camera")
    await _flowing(lesson.decoded("b", "a", "camera"))
    await asyncio.sleep(KEYFRAME_REQUEST_INTERVAL)
    before = a.keyframe_requests
    sent_before = lesson.forwarder.stats().sources[("a", "camera")].keyframe_requests_sent
    started = time.monotonic()
    for _ in range(20):
        assert await b.report_picture_loss(mid)
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    await asyncio.sleep(KEYFRAME_REQUEST_INTERVAL + 0.1)
    sent = lesson.forwarder.stats().sources[("a", "camera")].keyframe_requests_sent - sent_before
    # One request at once, then at most one per interval (however slow this machine ran).
    assert 2 <= sent <= 2 + elapsed / KEYFRAME_REQUEST_INTERVAL
    assert a.keyframe_requests - before >= sent
    assert lesson.forwarder.stats().sources[("a", "camera")].subscriber_keyframe_requests == 20


@pytest.mark.asyncio
async def test_switching_a_source_off_stops_its_packets_and_on_again_restarts_them(lesson):
    a = await lesson.join("a", "mic", "camera")
    b = await lesson.join("b")
    video, audio = lesson.mid("b", "a", "camera"), lesson.mid("b", "a", "mic")
    await _flowing(lesson.decoded("b", "a", "camera"))
    await _flowing(lesson.decoded("b", "a", "mic"))

    lesson.forwarder.set_forwarding("a", "camera", False)
    lesson.forwarder.set_forwarding("a", "mic", False)
    assert lesson.callbacks.tracks["b"][video] is None
    assert lesson.callbacks.tracks["b"][audio] is None
    await asyncio.sleep(0.5)
    stopped = (await b.packets_received(video), await b.packets_received(audio))
    received = lesson.forwarder.stats().sources[("a", "camera")].frames_received
    await asyncio.sleep(1)
    assert (await b.packets_received(video), await b.packets_received(audio)) == stopped
    # Not for want of media: the publisher went on sending.
    assert lesson.forwarder.stats().sources[("a", "camera")].frames_received > received + 10
    assert a.pc.connectionState == "connected"

    lesson.forwarder.set_forwarding("a", "camera", True)
    lesson.forwarder.set_forwarding("a", "mic", True)
    await _flowing(lesson.decoded("b", "a", "camera"))
    await _flowing(lesson.decoded("b", "a", "mic"))
    assert await b.packets_received(video) > stopped[0]


@pytest.mark.asyncio
async def test_the_relays_sender_reports_count_what_the_fast_path_sent(lesson):
    """RTCP sender reports (browsers' A/V sync and stats) follow the packets the slot forwarded."""
    await lesson.join("a", "camera")
    b = await lesson.join("b", video_slots=1, audio_slots=0)
    mid = lesson.mid("b", "a", "camera")
    await _flowing(lesson.decoded("b", "a", "camera"))
    reports: list[tuple[int, int]] = []

    async def next_report() -> None:
        report = await b.sender_report(mid)
        # A report sent before the slot's counters first reached the sender says 0: true, but
        # not what this test is about.
        if report is not None and report[0] > 0 and (not reports or report != reports[-1]):
            reports.append(report)

    deadline = time.monotonic() + 10
    while len(reports) < 2 and time.monotonic() < deadline:
        await next_report()
        await asyncio.sleep(0.1)
    assert len(reports) == 2, reports
    (packets, octets), (later_packets, later_octets) = reports
    assert 0 < packets < later_packets
    assert 0 < octets < later_octets
    # What the reports claim is what the slot sent, a moment before.
    assert later_packets <= lesson.forwarder.stats().slots[("b", mid)].packets_sent


@pytest.mark.asyncio
async def test_a_spare_slot_sends_no_sender_reports_until_it_carries_something(lesson):
    """Spare slots are most of a class's senders: their empty reports would cost the relay."""
    await lesson.join("a", "camera")
    b = await lesson.join("b", video_slots=2, audio_slots=0)
    carrying = lesson.mid("b", "a", "camera")
    spare = next(mid for mid, track in lesson.callbacks.tracks["b"].items() if track is None)
    await _flowing(lesson.decoded("b", "a", "camera"))
    for _ in range(100):
        if await b.sender_report(carrying) is not None:
            break
        await asyncio.sleep(0.1)
    assert await b.sender_report(carrying) is not None
    # aiortc sends a report every 0.5-1.5 s: over 2 s more the spare one would have sent some.
    await asyncio.sleep(2)
    assert await b.sender_report(spare) is None


@pytest.mark.asyncio
async def test_a_freed_slot_carries_the_next_source_on_the_same_timeline(lesson):
    await lesson.join("a", "camera")
    b = await lesson.join("b", video_slots=1, audio_slots=0)
    mid = lesson.mid("b", "a", "camera")
    await _flowing(lesson.decoded("b", "a", "camera"))
    lesson.forwarder.set_forwarding("a", "camera", False)
    await lesson.join("c", "camera")
    assert lesson.mid("b", "c", "camera") == mid
    await _flowing(lesson.decoded("b", "c", "camera"))
    assert lesson.forwarder.stats().slots[("b", mid)].first_frame_keyframe == [True, True]
    assert b.reception(mid).decoded_frames >= b.reception(mid).encoded_frames - 1


@pytest.mark.asyncio
async def test_a_subscriber_short_of_slots_is_asked_for_more_and_gets_the_source(lesson):
    await lesson.join("a", "camera")
    b = await lesson.join("b", video_slots=1)
    await lesson.join("c", "camera")
    assert lesson.callbacks.slots_wanted[-1] == ("b", *lesson.forwarder.slots_wanted("b"))
    assert lesson.forwarder.slots_wanted("b") == (2, 4)
    assert lesson.callbacks.mid_carrying("b", "c", "camera") is None

    b.add_slots(audio=0, video=1)
    await b.join(lesson.forwarder)
    await _flowing(lesson.decoded("b", "c", "camera"))
    await _flowing(lesson.decoded("b", "a", "camera"))


@pytest.mark.asyncio
async def test_an_offer_aiortc_rejects_fails_that_participant_only(lesson):
    await lesson.join("a", "mic", "camera")
    b = await lesson.join("b")
    await lesson.join("c", "camera")
    with pytest.raises(NegotiationError):
        await lesson.forwarder.negotiate("d", "v=0\r\nm=video nonsense\r\n", {})
    sdp, sources = await b.offer()
    with pytest.raises(NegotiationError):
        await lesson.forwarder.negotiate("b", sdp.replace("VP8/90000", "VP9/90000"), sources)
    assert ("b", "failed") in lesson.callbacks.peer_states
    assert lesson.callbacks.mid_carrying("c", "b", "camera") is None
    await _flowing(lesson.decoded("c", "a", "camera"))
    await _flowing(lesson.decoded("c", "a", "mic"))


@pytest.mark.asyncio
async def test_a_peer_that_never_connects_is_reported_failed():
    """aiortc fails some offers (here: no DTLS fingerprint) after answering, in the background."""
    lesson = Lesson(connect_timeout=1.0)
    try:
        participant = SyntheticParticipant("a")
        lesson.participants["a"] = participant
        sdp, sources = await participant.offer()
        without_fingerprint = "\r\n".join(
            line for line in sdp.split("\r\n") if not line.startswith("a=fingerprint")
        )
        await lesson.forwarder.negotiate("a", without_fingerprint, sources)
        await wait_for(lambda: ("a", "failed") in lesson.callbacks.peer_states, within=3)
        assert ("a", "connected") not in lesson.callbacks.peer_states
    finally:
        await lesson.close()


@pytest.mark.asyncio
async def test_removing_a_participant_closes_its_peer_and_frees_its_slots(lesson):
    a = await lesson.join("a", "mic", "camera")
    await lesson.join("b")
    await lesson.join("c", "camera")
    await _flowing(lesson.decoded("b", "a", "camera"))
    await lesson.forwarder.remove("a")
    assert ("a", "closed") in lesson.callbacks.peer_states
    for subscriber in ("b", "c"):
        carried = lesson.callbacks.tracks[subscriber].values()
        assert all(track is None or track[0] != "a" for track in carried)
    assert not any(key[0] == "a" for key in lesson.forwarder.stats().slots)
    assert lesson.forwarder.slots_wanted("b") == (2, 3)
    await wait_for(lambda: a.pc.connectionState in ("closed", "failed"), within=3)
    await _flowing(lesson.decoded("b", "c", "camera"))


@pytest.mark.asyncio
async def test_closing_the_forwarder_while_aiortc_closes_a_peer_leaves_aiortcs_close_whole(
    monkeypatch,
):
    """aiortc closes a connection whose remote end went, in a task of its own. Halfway through,
    the connection reports "closed" and the forwarder starts waiting for that close too. If the
    forwarder is closed then (the lesson ends), cancelling its wait must not cancel aiortc's
    shared close future: aiortc's close failed with InvalidStateError ("Task exception was never
    retrieved", seen at the benchmarks' teardown)."""
    lesson = Lesson()
    release = asyncio.Event()
    try:
        await lesson.join("a", "mic")
        peer = lesson.forwarder._peers["a"]
        pc = peer.pc
        assert pc is not None
        stop_ice = RTCIceTransport.stop

        async def slow_stop(transport: RTCIceTransport) -> None:
            await release.wait()
            await stop_ice(transport)

        # The DTLS transports stop (the connection reports "closed"), then the ICE ones wait.
        monkeypatch.setattr(RTCIceTransport, "stop", slow_stop)
        aiortc_close = asyncio.ensure_future(pc.close())  # as aiortc's own __closeTask
        await wait_for(lambda: ("a", "closed") in lesson.callbacks.peer_states, within=3)
        await asyncio.sleep(0)  # the forwarder's task now waits for the close
        assert peer.ended
        assert not aiortc_close.done()
        await lesson.forwarder.close()
        release.set()
        await asyncio.wait_for(aiortc_close, 10)  # raised InvalidStateError
        assert pc.connectionState == "closed"
    finally:
        release.set()
        await lesson.close()


def test_slots_wanted_counts_what_others_forward_plus_headroom():
    """It works before the participant has negotiated (the hello message needs it)."""
    forwarder = RecordedCallbacks().forwarder()
    forwarder.set_forwarding("a", "mic", True)
    forwarder.set_forwarding("a", "camera", True)
    forwarder.set_forwarding("b", "screen", True)
    forwarder.set_forwarding("b", "mic", False)
    assert forwarder.slots_wanted("newcomer") == (3, 4)
    assert forwarder.slots_wanted("a") == (2, 3)
