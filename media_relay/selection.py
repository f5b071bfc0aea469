"""Who is speaking, and which sources each subscriber receives (last-N): pure, no aiortc, no I/O.

The relay hears each publisher's microphone level in the RFC 6464 `ssrc-audio-level` header
extension of its audio packets (0 is the loudest, 127 silence, in -dBov). `SpeakerTracker` smooths
it per participant and picks up to three active speakers, with hysteresis so that a cough or the
gap between two words does not change the picture: a newcomer needs to be clearly louder than the
quietest speaker to take their place, and a speaker stays one for a while after going quiet. It
also remembers when each participant last spoke, which orders everyone for `select`.

`select` decides, for one subscriber, the microphones (the top three) and the cameras and screens
(last-N: the N most recent speakers' cameras; a shared screen and the teachers' cameras always)
it receives. Sources not selected are not forwarded to that subscriber at all, which also bounds
how many receive slots a client of a full class offers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Source = Literal["mic", "camera", "screen"]

SILENCE = 127
# Speakers heard at once: beyond three, people talk over each other and no one is understood.
TOP_AUDIO = 3
DEFAULT_LAST_N = 6
MAX_LAST_N = 30
# Loudness (dB above the -127 dBov floor, smoothed) from which someone counts as speaking: 77 is
# -50 dBov, well under speech into a laptop microphone (roughly -35 to -20 dBov) and over a quiet
# room once the browser's noise suppression has run. A first guess, to tune on real classrooms.
SPEAKING_DB = 77.0
# Smoothing per audio packet (Opus: one every 20 ms): ~0.2 s to follow a change halfway.
SMOOTHING = 0.1
# Packets stop when a microphone is muted or a peer drops: a level older than this is silence.
STALE_SECONDS = 0.5
# Hysteresis: a newcomer must be this much louder than the quietest speaker to replace them,
# a speaker keeps their place this long after going quiet, and no place changes hands twice
# within HOLD_SECONDS.
SWITCH_MARGIN_DB = 6.0
LINGER_SECONDS = 1.5
HOLD_SECONDS = 1.0


@dataclass
class _Voice:
    loudness: float = 0.0
    heard_at: float = float("-inf")
    speaker_since: float | None = None
    quiet_since: float | None = None


@dataclass
class SpeakerTracker:
    """Smoothed microphone levels per participant, and the active speakers they make.

    `hear` is called for every audio packet (cheap: one multiply-add); `update` is called a few
    times a second and says whether the speakers changed. Times are the caller's monotonic clock.
    """

    top: int = TOP_AUDIO
    _voices: dict[str, _Voice] = field(default_factory=dict)
    _speakers: list[str] = field(default_factory=list)
    _last_spoke: dict[str, float] = field(default_factory=dict)

    def hear(self, participant: str, level: int, now: float) -> None:
        """One audio packet's RFC 6464 level (0 loudest .. 127 silence) from `participant`."""
        voice = self._voices.get(participant)
        if voice is None:
            voice = self._voices[participant] = _Voice()
        loudness = float(SILENCE - min(max(level, 0), SILENCE))
        if now - voice.heard_at > STALE_SECONDS:
            voice.loudness = 0.0
        voice.loudness += SMOOTHING * (loudness - voice.loudness)
        voice.heard_at = now

    def heard(self, participant: str, loudness: float, heard_at: float) -> None:
        """A voice smoothed elsewhere, as `hear` would have (the relay's compiled streams do it
        per packet): its loudness when it was last heard, at `heard_at`."""
        voice = self._voices.get(participant)
        if voice is None:
            voice = self._voices[participant] = _Voice()
        voice.loudness = loudness
        voice.heard_at = heard_at

    def loudness(self, participant: str, now: float) -> float:
        """Smoothed dB above silence; 0 when not heard lately."""
        voice = self._voices.get(participant)
        if voice is None or now - voice.heard_at > STALE_SECONDS:
            return 0.0
        return voice.loudness

    @property
    def speakers(self) -> tuple[str, ...]:
        """The active speakers, the longest-standing first (a stable order for the page)."""
        return tuple(self._speakers)

    def forget(self, participant: str) -> None:
        """The participant left: they are no one's speaker any more."""
        self._voices.pop(participant, None)
        self._last_spoke.pop(participant, None)
        if participant in self._speakers:
            self._speakers.remove(participant)

    def update(self, now: float) -> bool:
        """Pick the speakers from the levels heard; True when they changed."""
        before = list(self._speakers)
        for participant in list(self._speakers):
            voice = self._voices[participant]
            if self.loudness(participant, now) >= SPEAKING_DB:
                voice.quiet_since = None
                continue
            if voice.quiet_since is None:
                voice.quiet_since = now
            if now - voice.quiet_since >= LINGER_SECONDS:
                self._speakers.remove(participant)
                voice.speaker_since = None
        candidates = sorted(
            (
                (self.loudness(p, now), p)
                for p in self._voices
                if p not in self._speakers and self.loudness(p, now) >= SPEAKING_DB
            ),
            reverse=True,
        )
        for loudness, participant in candidates:
            if len(self._speakers) < self.top:
                self._enter(participant, now)
                continue
            quietest = min(self._speakers, key=lambda p: self.loudness(p, now))
            held = self._voices[quietest].speaker_since
            if (
                loudness >= self.loudness(quietest, now) + SWITCH_MARGIN_DB
                and held is not None
                and now - held >= HOLD_SECONDS
            ):
                self._speakers.remove(quietest)
                self._voices[quietest].speaker_since = None
                self._enter(participant, now)
        for participant in self._speakers:
            self._last_spoke[participant] = now
        return self._speakers != before

    def _enter(self, participant: str, now: float) -> None:
        voice = self._voices[participant]
        voice.speaker_since = now
        voice.quiet_since = None
        self._speakers.append(participant)

    def ranking(self, participants: Iterable[str]) -> list[str]:
        """`participants` in the order selection prefers them.

        Current speakers first, then whoever spoke most recently, then the rest in the order given
        (the caller's stable order, e.g. who started publishing first).
        """
        order = list(participants)
        position = {p: i for i, p in enumerate(order)}
        speaking = {p: i for i, p in enumerate(self._speakers)}
        return sorted(
            order,
            key=lambda p: (
                speaking.get(p, len(speaking)),
                -self._last_spoke.get(p, float("-inf")),
                position[p],
            ),
        )


@dataclass(frozen=True)
class Selection:
    """What one subscriber receives: (participant, source) pairs of each kind."""

    audio: frozenset[tuple[str, Source]]
    video: frozenset[tuple[str, Source]]

    def __contains__(self, key: object) -> bool:
        return key in self.audio or key in self.video


def select(
    *,
    subscriber: str,
    publishing: Sequence[tuple[str, Source]],
    ranking: Sequence[str],
    pinned: Collection[str],
    last_n: int = DEFAULT_LAST_N,
    top_audio: int = TOP_AUDIO,
) -> Selection:
    """The sources `subscriber` receives, of those `publishing` (live, in the relay's order).

    `ranking` orders participants (SpeakerTracker.ranking); `pinned` are the participants whose
    camera is always received (the teachers). Every screen is always received too. `last_n` counts
    all video, pinned included; pinned video is received even beyond it. A subscriber never
    receives their own sources.
    """
    if last_n < 1:
        raise ValueError("last_n must be at least 1.")
    rank = {p: i for i, p in enumerate(ranking)}
    others = [key for key in publishing if key[0] != subscriber]

    def by_rank(key: tuple[str, Source]) -> int:
        return rank.get(key[0], len(rank))

    mics = sorted((key for key in others if key[1] == "mic"), key=by_rank)
    video = [key for key in others if key[1] != "mic"]
    always = [key for key in video if key[1] == "screen" or key[0] in pinned]
    cameras = sorted((key for key in video if key not in always), key=by_rank)
    return Selection(
        audio=frozenset(mics[:top_audio]),
        video=frozenset(always + cameras[: max(last_n - len(always), 0)]),
    )
