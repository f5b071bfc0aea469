"""The relay benchmarks' scenarios: who publishes, who subscribes, through which relay.

Every publisher sends audio and video; a subscriber offers one audio and one video receive slot
per publisher; in a full room every publisher also subscribes to everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The relay and the load generator each get a core of their own (os.sched_setaffinity).
RELAY_CORE, GENERATOR_CORE = 1, 0


@dataclass(frozen=True)
class Scenario:
    """One benchmark's participants and relay."""

    name: str
    relay: Literal["forward", "transcode"]
    publishers: int
    subscribers: int
    publishers_subscribe: bool = False
    storm_every: float | None = None
    """Seconds between keyframe storms (every publisher's keyframe at once, PLIs from all)."""
    note: str = ""


LECTURE = Scenario("relay-lecture", "forward", publishers=1, subscribers=30)
TRANSCODE_BASELINE = Scenario(
    "relay-transcode-baseline",
    "transcode",
    publishers=1,
    subscribers=30,
    note="relay-lecture through aiortc's MediaRelay (decode once, one VP8/Opus encoder per "
    "subscriber), run right after relay-lecture under the same conditions",
)
# 31 x 31 is ~100,000 packets a second into the generator: far beyond one Python core. Scaled down
# until the generator core stays under 90 %; FULL_PARTICIPANTS says how far.
FULL_PARTICIPANTS = 8
FULL = Scenario(
    "relay-full",
    "forward",
    publishers=FULL_PARTICIPANTS,
    subscribers=0,
    publishers_subscribe=True,
    note=f"scaled down from 31 x 31 to {FULL_PARTICIPANTS} x {FULL_PARTICIPANTS}: one generator "
    "core cannot receive 31 x 30 streams",
)
KEYFRAME_STORM = Scenario(
    "keyframe-storm",
    "forward",
    publishers=3,
    subscribers=30,
    storm_every=4.0,
    note="3 publishers (a+v) to 30 subscribers; every 4 s all publishers send a keyframe at once "
    "and all 30 subscribers send a PLI on every video slot (as 30 new joiners would)",
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (LECTURE, TRANSCODE_BASELINE, FULL, KEYFRAME_STORM)
}
