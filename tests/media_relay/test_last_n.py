"""Last-N and active speakers in the forwarder, with synthetic aiortc participants.

The microphone levels are real: aiortc's sender writes each packet's RFC 6464 level from the
samples it encodes, and the relay reads it from the header extension, as it does a browser's.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Sequence

import av
import pytest
import pytest_asyncio
from aiortc.mediastreams import AudioStreamTrack

from media_relay import pacing
from media_relay.forwarding import SLOT_HEADROOM, LessonForwarder
from media_relay.rtp_fanout import SlotStats
from tests.media_relay.peers import (
    RecordedCallbacks,
    SyntheticLesson,
    SyntheticParticipant,
    wait_for,
)

pytestmark = pytest.mark.asyncio


class LoudTrack(AudioStreamTrack):
    """A square wave at half of full scale: about -6 dBov, a raised voice."""

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        assert isinstance(frame, av.AudioFrame)
        samples = frame.samples
        frame.planes[0].update(struct.pack(f"<{samples}h", *([16000, -16000] * (samples // 2))))
        return frame


class Lesson(SyntheticLesson):
    def __init__(self) -> None:
        callbacks = RecordedCallbacks()
        self.speakers: list[tuple[str, ...]] = []
        forwarder = LessonForwarder(
            on_peer_state=callbacks.on_peer_state,
            on_tracks=callbacks.on_tracks,
            on_slots_wanted=callbacks.on_slots_wanted,
            on_speakers=self._on_speakers,
        )
        super().__init__(callbacks, forwarder)

    def _on_speakers(self, speakers: Sequence[str]) -> None:
        self.speakers.append(tuple(speakers))

    async def publisher(self, name: str) -> SyntheticParticipant:
        self.forwarder.set_forwarding(name, "mic", True)
        self.forwarder.set_forwarding(name, "camera", True)
        # Publishers receive nothing here, so that all the relay forwards is for the subscribers.
        return await self.add(SyntheticParticipant(name, audio_slots=0, video_slots=0))

    async def subscriber(self, name: str) -> SyntheticParticipant:
        audio, video = self.forwarder.slots_wanted(name)
        participant = SyntheticParticipant(
            name, send_audio=False, send_video=False, audio_slots=audio, video_slots=video
        )
        return await self.add(participant)

    def carried(self, subscriber: str) -> set[tuple[str, str]]:
        return {track for track in self.callbacks.tracks[subscriber].values() if track}

    def decoded(self, subscriber: str, publisher: str, source: str) -> int:
        mid = self.mid(subscriber, publisher, source)
        return self.participants[subscriber].reception(mid).decoded_frames


@pytest_asyncio.fixture
async def lesson() -> AsyncIterator[Lesson]:
    lesson = Lesson()
    yield lesson
    await lesson.close()


async def test_a_subscriber_receives_only_the_selected_cameras_and_the_top_three_microphones(
    lesson,
):
    lesson.forwarder.set_selection(last_n=2, pinned={"teacher"})
    for name in ("teacher", "a", "b", "c", "d"):
        await lesson.publisher(name)
    # Slots for what it will receive, not for the whole class.
    assert lesson.forwarder.slots_wanted("s") == (3 + SLOT_HEADROOM, 2 + SLOT_HEADROOM)
    await lesson.subscriber("s")
    # Nobody has spoken yet: the teacher (pinned), then the first to publish.
    await wait_for(lambda: lesson.decoded("s", "a", "camera") >= 3, within=10)
    await wait_for(lambda: lesson.decoded("s", "teacher", "camera") >= 3, within=10)
    assert lesson.carried("s") == {
        ("teacher", "camera"),
        ("a", "camera"),
        ("teacher", "mic"),
        ("a", "mic"),
        ("b", "mic"),
    }
    stats = lesson.forwarder.stats()
    for name in ("b", "c", "d"):
        assert stats.sources[(name, "camera")].frames_forwarded == 0
    for name in ("c", "d"):
        assert stats.sources[(name, "mic")].frames_forwarded == 0
    free = [mid for mid, track in lesson.callbacks.tracks["s"].items() if track is None]
    assert len(free) == 2 * SLOT_HEADROOM
    assert all(stats.slots[("s", mid)].packets_sent == 0 for mid in free)


async def test_a_pupil_who_speaks_up_takes_a_camera_slot_from_a_keyframe(lesson):
    lesson.forwarder.set_selection(last_n=2, pinned={"teacher"})
    for name in ("teacher", "a", "b", "c"):
        await lesson.publisher(name)
    await lesson.subscriber("s")
    await wait_for(lambda: ("a", "camera") in lesson.carried("s"), within=10)
    lesson.participants["c"].mic.sender.replaceTrack(LoudTrack())
    await wait_for(lambda: ("c",) in lesson.speakers, within=10)
    assert lesson.forwarder.speakers == ("c",)
    assert ("c", "camera") in lesson.carried("s")
    assert ("c", "mic") in lesson.carried("s")
    assert ("a", "camera") not in lesson.carried("s")
    assert ("teacher", "camera") in lesson.carried("s")
    await wait_for(lambda: lesson.decoded("s", "c", "camera") >= 3, within=10)
    mid = lesson.callbacks.mid_carrying("s", "c", "camera")
    assert mid is not None

    def first_frames() -> list[bool | None]:
        stats: SlotStats = lesson.forwarder.stats().slots[("s", mid)]
        return stats.first_frame_keyframe

    # The selection may have moved the camera in and out while levels settled: whenever the
    # slot sent a source's first frame, it was a keyframe.
    await wait_for(lambda: first_frames()[-1] is not None, within=10)
    assert first_frames()[-1] is True
    assert False not in first_frames()


async def test_a_camera_that_loses_its_slot_to_a_speaker_sends_what_waits_a_stopped_one_does_not(
    lesson,
):
    """Video waiting in the pacer when a change of speakers takes its slot still leaves, so the
    slot's numbering has no gap (a gap no NACK can fill: the history forgets what never left).
    A camera a moderator stops sends nothing more, waiting or not."""
    # Below a camera's bitrate: video waits all the time, so every change finds some waiting.
    pacing.configure(rate_bits_per_second=16_000, burst_seconds=0.05)
    try:
        lesson.forwarder.set_selection(last_n=2, pinned={"teacher"})
        for name in ("teacher", "a", "b", "c"):
            await lesson.publisher(name)
        await lesson.subscriber("s")
        await wait_for(lambda: ("a", "camera") in lesson.carried("s"), within=10)
        await wait_for(lambda: pacing.counters().waiting > 20)
        dropped = pacing.counters().stopped_dropped
        lesson.participants["c"].mic.sender.replaceTrack(LoudTrack())
        await wait_for(lambda: ("a", "camera") not in lesson.carried("s"), within=10)
        assert ("c", "camera") in lesson.carried("s")
        assert pacing.counters().stopped_dropped == dropped

        lesson.forwarder.set_forwarding("teacher", "camera", False)
        assert ("teacher", "camera") not in lesson.carried("s")
        assert pacing.counters().stopped_dropped > dropped
    finally:
        pacing.configure()


async def test_a_speaker_who_leaves_is_no_longer_announced(lesson):
    await lesson.publisher("a")
    await lesson.subscriber("s")
    lesson.participants["a"].mic.sender.replaceTrack(LoudTrack())
    await wait_for(lambda: ("a",) in lesson.speakers, within=10)
    await lesson.forwarder.remove("a")
    assert lesson.speakers[-1] == ()


async def test_without_selection_everyone_receives_every_source():
    callbacks = RecordedCallbacks()
    forwarder = LessonForwarder(
        on_peer_state=callbacks.on_peer_state,
        on_tracks=callbacks.on_tracks,
        on_slots_wanted=callbacks.on_slots_wanted,
        selective=False,
    )
    forwarder.set_selection(last_n=1, pinned=())
    names = [f"p{n}" for n in range(5)]
    for name in names:
        forwarder.set_forwarding(name, "mic", True)
        forwarder.set_forwarding(name, "camera", True)
    # Four microphones and four cameras each: more than the top three and last-N = 1.
    assert all(forwarder.slots_wanted(name) == (4 + SLOT_HEADROOM,) * 2 for name in names)
    await forwarder.close()
