"""Simulcast in the forwarder, with synthetic aiortc participants sending two camera layers.

Each simulcasting publisher sends its camera at 160x120 (`camera`) and at 96x72 (`camera-low`),
as the class page sends its camera full size and at most 320 wide. The widths the subscribers
decode say which layer reached them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
import pytest_asyncio

from media_relay import forwarding
from media_relay.aiortc_internals import hook_bandwidth_estimates
from tests.media_relay.peers import (
    LOW_WIDTH,
    WIDTH,
    SyntheticLesson,
    SyntheticParticipant,
    wait_for,
)

pytestmark = pytest.mark.asyncio

HIGH, LOW = WIDTH, LOW_WIDTH


class Lesson(SyntheticLesson):
    async def publisher(
        self, name: str, *, simulcast: bool = True, low_layer_silent: bool = False
    ) -> SyntheticParticipant:
        self.forwarder.set_forwarding(name, "camera", True)
        self.forwarder.set_forwarding(name, "mic", True)
        participant = SyntheticParticipant(
            name,
            simulcast=simulcast,
            low_layer_silent=low_layer_silent,
            audio_slots=0,
            video_slots=0,
        )
        return await self.add(participant)

    async def subscriber(self, name: str) -> SyntheticParticipant:
        participant = SyntheticParticipant(
            name, send_audio=False, send_video=False, audio_slots=2, video_slots=3
        )
        return await self.add(participant)

    def camera_mid(self, subscriber: str, publisher: str) -> str:
        return self.mid(subscriber, publisher, "camera")

    def width(self, subscriber: str, publisher: str) -> int | None:
        reception = self.participants[subscriber].reception(self.camera_mid(subscriber, publisher))
        return reception.decoded_width

    def layer(self, subscriber: str, publisher: str) -> str:
        return self.forwarder.stats().layers[(subscriber, self.camera_mid(subscriber, publisher))]

    def decoded(self, subscriber: str, publisher: str) -> int:
        mid = self.camera_mid(subscriber, publisher)
        return self.participants[subscriber].reception(mid).decoded_frames


@pytest_asyncio.fixture
async def lesson() -> AsyncIterator[Lesson]:
    lesson = Lesson()
    lesson.forwarder.set_selection(last_n=6, pinned={"teacher"})
    yield lesson
    await lesson.close()


async def class_of_two(lesson: Lesson) -> None:
    """A teacher and a pupil send both layers; a third participant watches."""
    await lesson.publisher("teacher")
    await lesson.publisher("pupil")
    await lesson.subscriber("watcher")
    await wait_for(
        lambda: (
            lesson.width("watcher", "teacher") is not None
            and lesson.width("watcher", "pupil") is not None
        ),
        within=10,
    )


async def measured_class_of_two(lesson: Lesson) -> SyntheticParticipant:
    """`class_of_two` once the relay has measured every layer's bitrate (twice a second): what
    a subscriber's estimate is compared with. Returns the watcher."""
    await class_of_two(lesson)
    await wait_for(
        lambda: all(
            lesson.forwarder.stats().sources[(publisher, layer)].bitrate > 0
            for publisher in ("teacher", "pupil")
            for layer in ("camera", "camera-low")
        )
    )
    return lesson.participants["watcher"]


async def test_the_large_tile_gets_the_high_layer_and_thumbnails_the_low(lesson):
    await class_of_two(lesson)
    # Until the page says what it shows large, the teacher's camera is on its stage.
    assert lesson.width("watcher", "teacher") == HIGH
    assert lesson.width("watcher", "pupil") == LOW
    assert lesson.layer("watcher", "teacher") == "camera"
    assert lesson.layer("watcher", "pupil") == "camera-low"
    # A layer is a picture of the source, not a source of its own: the page sees two cameras.
    assert sorted(t for t in lesson.callbacks.tracks["watcher"].values() if t) == [
        ("pupil", "camera"),
        ("pupil", "mic"),
        ("teacher", "camera"),
        ("teacher", "mic"),
    ]


async def test_a_new_stage_switches_layers_at_keyframes_without_a_gap(lesson):
    await class_of_two(lesson)
    low_requests = lesson.participants["pupil"].low_keyframe_requests
    high_requests = lesson.participants["pupil"].keyframe_requests

    lesson.forwarder.set_stage("watcher", ["pupil"])

    await wait_for(
        lambda: (
            lesson.width("watcher", "pupil") == HIGH and lesson.width("watcher", "teacher") == LOW
        ),
        within=10,
    )
    assert lesson.layer("watcher", "pupil") == "camera"
    assert lesson.layer("watcher", "teacher") == "camera-low"
    # The new layer's keyframe was asked for; the old one's was not.
    assert lesson.participants["pupil"].keyframe_requests > high_requests
    assert lesson.participants["pupil"].low_keyframe_requests == low_requests
    # Each slot stayed one stream (same mid, same receiver), and every layer it carried began
    # with a keyframe: the decoder never saw a delta frame of a layer it had not started.
    stats = lesson.forwarder.stats().slots
    for publisher in ("teacher", "pupil"):
        first = stats[("watcher", lesson.camera_mid("watcher", publisher))].first_frame_keyframe
        assert len(first) == 2
        assert all(first)
    decoded = lesson.decoded("watcher", "pupil")
    await wait_for(lambda: lesson.decoded("watcher", "pupil") > decoded + 10)


async def test_staging_nobody_puts_every_camera_on_the_low_layer(lesson):
    await class_of_two(lesson)
    lesson.forwarder.set_stage("watcher", [])
    await wait_for(lambda: lesson.width("watcher", "teacher") == LOW, within=10)
    assert lesson.layer("watcher", "pupil") == "camera-low"


async def test_a_congested_path_puts_the_large_tile_on_the_low_layer_then_tries_again(
    lesson, monkeypatch
):
    monkeypatch.setattr(forwarding, "RETRY_AFTER", 1.0)
    watcher = await measured_class_of_two(lesson)

    # Plenty, then far less than the two layers it receives: its path is congested.
    await watcher.estimate_bandwidth(50_000_000)
    await watcher.estimate_bandwidth(5_000)
    await wait_for(lambda: lesson.width("watcher", "teacher") == LOW, within=10)
    assert lesson.layer("watcher", "teacher") == "camera-low"

    # After a while the high layer is tried again; an estimate that climbs keeps it.
    await watcher.estimate_bandwidth(10_000)
    await wait_for(lambda: lesson.width("watcher", "teacher") == HIGH, within=10)
    assert lesson.layer("watcher", "pupil") == "camera-low"
    await watcher.estimate_bandwidth(20_000)
    await asyncio.sleep(1.5)
    assert lesson.layer("watcher", "teacher") == "camera"


async def test_an_estimate_of_some_streams_only_says_nothing_of_the_downlink(lesson):
    """aiortc's receivers send a REMB per stream; a browser's names every stream it receives."""
    watcher = await measured_class_of_two(lesson)
    await watcher.estimate_bandwidth(50_000_000)
    teacher_slot = next(t for t in watcher.taps if t.mid == lesson.camera_mid("watcher", "teacher"))
    ssrc = watcher.taps[teacher_slot].media_ssrc
    assert ssrc is not None
    await watcher.taps[teacher_slot].send_bandwidth_estimate(5_000, [ssrc])
    await asyncio.sleep(1.5)
    assert lesson.layer("watcher", "teacher") == "camera"


async def test_a_muted_camera_sends_neither_layer(lesson):
    await class_of_two(lesson)
    teacher_mid, pupil_mid = (lesson.camera_mid("watcher", p) for p in ("teacher", "pupil"))
    lesson.forwarder.set_forwarding("pupil", "camera", False)
    assert lesson.callbacks.tracks["watcher"][pupil_mid] is None
    before = lesson.forwarder.stats()

    def received(stats: forwarding.ForwardingStats, layer: forwarding.OfferSource) -> int:
        return stats.sources[("pupil", layer)].frames_received

    # Both layers still arrive from the pupil ...
    await wait_for(
        lambda: all(
            received(lesson.forwarder.stats(), layer) > received(before, layer) + 10
            for layer in ("camera", "camera-low")
        )
    )
    after = lesson.forwarder.stats()
    # ... and not one packet of either goes on, while the teacher's still does.
    assert after.slots[("watcher", pupil_mid)].packets_sent == (
        before.slots[("watcher", pupil_mid)].packets_sent
    )
    for layer in ("camera", "camera-low"):
        assert after.sources[("pupil", layer)].frames_forwarded == (
            before.sources[("pupil", layer)].frames_forwarded
        )
    assert after.slots[("watcher", teacher_mid)].packets_sent > (
        before.slots[("watcher", teacher_mid)].packets_sent
    )


async def test_a_publisher_without_a_low_layer_is_forwarded_as_it_is(lesson):
    await lesson.publisher("teacher")
    await lesson.publisher("pupil", simulcast=False)
    await lesson.subscriber("watcher")
    await wait_for(lambda: lesson.width("watcher", "pupil") is not None, within=10)
    assert lesson.width("watcher", "pupil") == HIGH
    assert lesson.layer("watcher", "pupil") == "camera"


async def test_the_relay_estimates_a_publishers_bandwidth_for_both_layers_at_once(lesson):
    """One REMB names both layers: a browser takes each REMB as its whole connection's limit, so
    an estimate of the low layer alone would cap the high layer to the low layer's rate."""
    publisher = await lesson.publisher("teacher")
    assert publisher.camera_low is not None
    heard: dict[str, list[int]] = {"camera": [], "camera-low": []}

    def hear(layer: str) -> Callable[[int, Sequence[int]], None]:
        return lambda bitrate, _ssrcs: heard[layer].append(bitrate)

    for layer, transceiver in (("camera", publisher.camera), ("camera-low", publisher.camera_low)):
        hook_bandwidth_estimates(transceiver.sender, hear(layer))
    await lesson.subscriber("watcher")
    # One REMB reaches both (the first may name only the stream the estimator saw first); two
    # estimators would each have estimated a stream of their own, never the same figure.
    await wait_for(lambda: bool(set(heard["camera"]) & set(heard["camera-low"])), within=10)


async def test_a_low_layer_named_but_never_sent_leaves_thumbnails_on_the_high_one(lesson):
    await lesson.publisher("teacher")
    await lesson.publisher("pupil", low_layer_silent=True)
    await lesson.subscriber("watcher")
    # The thumbnail first waits on the silent layer; once that is measured silent, the high one.
    await wait_for(lambda: lesson.width("watcher", "pupil") == HIGH, within=10)
    assert lesson.layer("watcher", "pupil") == "camera"
    assert lesson.layer("watcher", "teacher") == "camera"


async def test_a_dip_shorter_than_a_second_is_not_congestion(lesson):
    """A busy machine delays packets now and then, and a browser's estimate dips for it."""
    watcher = await measured_class_of_two(lesson)
    await watcher.estimate_bandwidth(50_000_000)
    for _ in range(3):
        await watcher.estimate_bandwidth(5_000)
        await asyncio.sleep(0.3)
        await watcher.estimate_bandwidth(50_000_000)
        await asyncio.sleep(0.7)
    assert lesson.layer("watcher", "teacher") == "camera"
