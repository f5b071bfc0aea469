"""Active speakers and last-N selection (media_relay.selection), on a clock the tests move."""

from __future__ import annotations

import pytest

from media_relay.selection import (
    HOLD_SECONDS,
    LINGER_SECONDS,
    SILENCE,
    STALE_SECONDS,
    Source,
    SpeakerTracker,
    select,
)

LOUD, QUIETER, MURMUR = 30, 45, 60  # -dBov: speech, quieter speech, room noise
PACKET = 0.02


class Clock:
    """Audio packets every 20 ms from whoever is talking, and the tracker updated as they go."""

    def __init__(self) -> None:
        self.now = 0.0
        self.tracker = SpeakerTracker()
        self.changes = 0

    def talk(self, seconds: float, **levels: int) -> None:
        """Each named participant sends packets at their level for `seconds`."""
        end = self.now + seconds
        while self.now < end:
            self.now += PACKET
            for participant, level in levels.items():
                self.tracker.hear(participant, level, self.now)
            if round(self.now / PACKET) % 12 == 0:  # an update every ~0.25 s
                self.changes += self.tracker.update(self.now)

    @property
    def speakers(self) -> tuple[str, ...]:
        return self.tracker.speakers


def test_someone_talking_becomes_a_speaker_and_silence_or_room_noise_does_not():
    clock = Clock()
    clock.talk(1.0, ada=LOUD, bob=SILENCE, cat=MURMUR)
    assert clock.speakers == ("ada",)


def test_at_most_three_speakers_the_loudest_first_come():
    clock = Clock()
    clock.talk(1.0, a=LOUD, b=LOUD, c=LOUD, d=QUIETER, e=SILENCE)
    assert set(clock.speakers) == {"a", "b", "c"}
    assert len(clock.speakers) == 3


def test_a_pause_between_words_keeps_the_speaker():
    clock = Clock()
    clock.talk(1.0, ada=LOUD)
    clock.talk(LINGER_SECONDS / 2, ada=SILENCE)
    clock.talk(0.5, ada=LOUD)
    assert clock.speakers == ("ada",)
    assert clock.changes == 1


def test_a_speaker_who_stays_quiet_stops_being_one():
    clock = Clock()
    clock.talk(1.0, ada=LOUD)
    clock.talk(LINGER_SECONDS + 1.0, ada=SILENCE)
    assert clock.speakers == ()


def test_a_muted_microphone_counts_as_silence_once_its_packets_stop():
    clock = Clock()
    clock.talk(1.0, ada=LOUD)
    clock.talk(STALE_SECONDS + LINGER_SECONDS + 1.0)  # nobody sends anything
    assert clock.speakers == ()


def test_a_voice_smoothed_elsewhere_counts_as_one_heard_here():
    """The relay's compiled streams smooth levels per packet and hand the result over."""
    heard, told = Clock(), SpeakerTracker()
    heard.talk(1.0, ada=LOUD, bob=MURMUR)
    for participant in ("ada", "bob"):
        told.heard(participant, heard.tracker.loudness(participant, heard.now), heard.now)
    told.update(heard.now)
    assert told.speakers == heard.speakers == ("ada",)
    # A voice last heard too long ago is silence, as one whose packets stopped.
    assert told.loudness("ada", heard.now + STALE_SECONDS + 0.1) == 0.0


def test_a_newcomer_only_a_little_louder_does_not_take_a_place():
    clock = Clock()
    clock.talk(2.0, a=QUIETER, b=QUIETER, c=QUIETER)
    clock.talk(2.0, a=QUIETER, b=QUIETER, c=QUIETER, d=QUIETER - 3)
    assert set(clock.speakers) == {"a", "b", "c"}


def test_a_clearly_louder_newcomer_replaces_the_quietest_speaker():
    clock = Clock()
    clock.talk(HOLD_SECONDS + 1.0, a=LOUD, b=LOUD, c=QUIETER)
    clock.talk(2.0, a=LOUD, b=LOUD, c=QUIETER, d=LOUD - 10)
    assert set(clock.speakers) == {"a", "b", "d"}


def test_speakers_keep_their_order_while_they_speak():
    clock = Clock()
    clock.talk(1.0, ada=QUIETER)
    clock.talk(1.0, ada=QUIETER, bob=LOUD)
    assert clock.speakers == ("ada", "bob")


def test_ranking_puts_speakers_then_recent_speakers_then_the_given_order():
    clock = Clock()
    clock.talk(1.0, cat=LOUD)
    clock.talk(LINGER_SECONDS + 1.0, cat=SILENCE, bob=LOUD)
    clock.talk(1.0, bob=LOUD, dan=LOUD)
    assert clock.tracker.ranking(["ann", "bob", "cat", "dan", "eve"]) == [
        "bob",
        "dan",
        "cat",
        "ann",
        "eve",
    ]


def test_a_participant_who_left_is_forgotten():
    clock = Clock()
    clock.talk(1.0, ada=LOUD)
    clock.tracker.forget("ada")
    assert clock.speakers == ()
    assert clock.tracker.ranking(["bob", "ada"]) == ["bob", "ada"]


def _publishing(*names: str, screen: str | None = None) -> list[tuple[str, Source]]:
    keys: list[tuple[str, Source]] = []
    for name in names:
        keys += [(name, "mic"), (name, "camera")]
    if screen is not None:
        keys.append((screen, "screen"))
    return keys


CLASS = [f"p{i:02}" for i in range(30)]


def test_a_subscriber_gets_the_top_three_microphones_by_rank():
    selection = select(
        subscriber="p00",
        publishing=_publishing(*CLASS),
        ranking=["p07", "p03", "p09", "p01"],
        pinned=(),
    )
    assert selection.audio == {("p07", "mic"), ("p03", "mic"), ("p09", "mic")}


def test_nobody_receives_their_own_sources_and_the_next_one_fills_in():
    selection = select(
        subscriber="p07",
        publishing=_publishing(*CLASS),
        ranking=["p07", "p03", "p09", "p01"],
        pinned=(),
        last_n=3,
    )
    assert selection.audio == {("p03", "mic"), ("p09", "mic"), ("p01", "mic")}
    assert selection.video == {("p03", "camera"), ("p09", "camera"), ("p01", "camera")}


@pytest.mark.parametrize("last_n", [1, 6, 12])
def test_last_n_bounds_the_cameras_and_the_most_recent_speakers_come_first(last_n):
    ranking = ["p05", "p04", "p03", "p02", "p01"]
    selection = select(
        subscriber="p29", publishing=_publishing(*CLASS), ranking=ranking, pinned=(), last_n=last_n
    )
    assert len(selection.video) == last_n
    expected = (ranking + [p for p in CLASS if p not in ranking])[:last_n]
    assert selection.video == {(p, "camera") for p in expected}


def test_the_teachers_camera_and_a_shared_screen_are_always_received():
    selection = select(
        subscriber="p29",
        publishing=_publishing("teacher", *CLASS, screen="p20"),
        ranking=["p01", "p02", "p03"],
        pinned=("teacher",),
        last_n=4,
    )
    assert selection.video == {
        ("teacher", "camera"),
        ("p20", "screen"),
        ("p01", "camera"),
        ("p02", "camera"),
    }


def test_pinned_video_is_received_even_beyond_last_n():
    selection = select(
        subscriber="p29",
        publishing=_publishing("teacher", *CLASS, screen="teacher"),
        ranking=["p01"],
        pinned=("teacher",),
        last_n=1,
    )
    assert selection.video == {("teacher", "camera"), ("teacher", "screen")}


def test_a_small_class_receives_everything():
    selection = select(
        subscriber="a", publishing=_publishing("a", "b", "c", "d"), ranking=[], pinned=()
    )
    assert selection.audio == {("b", "mic"), ("c", "mic"), ("d", "mic")}
    assert selection.video == {("b", "camera"), ("c", "camera"), ("d", "camera")}


def test_last_n_must_be_positive():
    with pytest.raises(ValueError, match="last_n"):
        select(subscriber="a", publishing=[], ranking=[], pinned=(), last_n=0)
