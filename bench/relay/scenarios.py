"""The relay benchmarks' scenarios: who publishes, who subscribes, through which relay.

Every publisher sends audio and video (with `simulcast`, its camera twice: full size and a low
layer); a subscriber offers one audio and one video receive slot per publisher (last-N: as many as
it receives); in a full room every publisher also subscribes to everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

# The relay and the load generator each get a core of their own (os.sched_setaffinity).
RELAY_CORE, GENERATOR_CORE = 1, 0

AddressFamily = Literal["ipv4", "ipv6"]
# Both ends gather host candidates of both address families, and ICE nominated an IPv4 pair in one
# run and an IPv6 pair in the next (or some of each in one run): a condition nobody chose and no
# result said. Each run now offers and accepts candidates of one family only, as a peer on a network
# of that family would: IPv4 by default, the family most school networks run; `--address-family`
# measures the other. (relay-full, 4 alternated pairs of 15 s: 57.6k forwarded packets per
# CPU-second by IPv4 and 57.1k by IPv6 on average, the same within the machine's noise.)
ADDRESS_FAMILIES: tuple[AddressFamily, ...] = ("ipv4", "ipv6")


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
    last_n: int | None = None
    """With last-N on, each subscriber receives this many videos and the top-3 audio, and offers
    only that many receive slots."""
    speakers: int = 0
    """Publishers whose microphone level says they speak (the rest send silence), at a time."""
    rotate_every: float | None = None
    """Seconds between moving the speaking to the next `speakers` publishers."""
    other_class: bool = False
    """A second, quiet lesson in the same relay process (1 teacher audio+video to 2 pupils), whose
    audio latency is reported apart (`other_class_audio_*`): what the first lesson's load costs
    another class served by the same event loop."""
    compare_pacing: bool = False
    """Run a second time, storms every `COMPARE_STORM_EVERY` s with the relay's video pacer on at
    one storm and off at the next, and report the storms of each (`pacing_compared`)."""
    alternate_pacing: bool = False
    """The pacer on at even storms, off at odd ones (that second run)."""
    simulcast: bool = False
    """Publishers also send their camera's low layer (`camera-low`): subscribers get the high
    layer of the teacher's camera (their large tile) and the low layer of the others."""
    teacher: bool = False
    """The first publisher is the lesson's teacher: its camera is pinned (always received, and on
    every subscriber's large tile)."""
    selective: bool = True
    """False: the relay selects nothing, every subscriber receives every publisher's sources."""
    compare_gso: bool = False
    """Measure in alternate phases of `GSO_PHASE_SECONDS`, the relay sending its video by UDP GSO
    in one and a datagram a send in the next, and report the two (`gso_compared`)."""
    address_family: AddressFamily = "ipv4"
    """The one address family of the ICE candidates both ends offer (see ADDRESS_FAMILIES)."""
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
# until the generator keeps up: at 12 x 12 it took 83 % of its core and lost 1 % of the packets;
# at 10 x 10, 62 % and nothing lost. FULL_PARTICIPANTS says how far.
FULL_PARTICIPANTS = 10
FULL = Scenario(
    "relay-full",
    "forward",
    publishers=FULL_PARTICIPANTS,
    subscribers=0,
    publishers_subscribe=True,
    selective=False,
    note=f"scaled down from 31 x 31 to {FULL_PARTICIPANTS} x {FULL_PARTICIPANTS}: one generator "
    "core cannot receive 31 x 30 streams; the relay's selection is off (LessonForwarder "
    "selective=False), so every participant receives every other's audio and video",
)
# Alternate phases cancel the machine's slower swings (other tenants' load), which moved the relay's
# CPU by 10-25 % between runs, far more than a few percent's change in the relay.
GSO_PHASE_SECONDS = 2.0
FULL_GSO_COMPARED = replace(
    FULL,
    name="relay-full-gso-compared",
    compare_gso=True,
    note=f"relay-full, measured in alternate {GSO_PHASE_SECONDS:g} s phases with the relay's UDP "
    "GSO on and off: the relay's CPU per socket datagram in each (`gso_compared`); the other "
    "figures are the whole window's",
)
KEYFRAME_STORM = Scenario(
    "keyframe-storm",
    "forward",
    publishers=3,
    subscribers=30,
    storm_every=4.0,
    other_class=True,
    compare_pacing=True,
    note="3 publishers (a+v) to 30 subscribers; every 4 s all publishers send a keyframe at once "
    "and all 30 subscribers send a PLI on every video slot (as 30 new joiners would); a second "
    "lesson in the same relay (1 teacher a+v to 2 pupils) times its audio; a second run with "
    "the video pacer on and off at alternate storms compares them (`pacing_compared`)",
)

# 31 participants each receiving 6 full-size videos and 3 audio streams is ~15,000 packets a
# second into the generator: its process took 92 % of its core and the run was invalid. Scaled down
# until the generator process stays near 60 %; GALLERY_SINGLE_LAYER_PARTICIPANTS says how far.
# With simulcast 5 of the 6 videos are the low layer (half the frames, a third of the bits), but
# each publisher sends a third stream: at 31 the generator still saturated its core (84 % of it,
# and waiting for it), at 24 it took 84 % with its core 91 % busy (invalid), at 22 79 % (valid).
GALLERY_PARTICIPANTS = 22
GALLERY_SINGLE_LAYER_PARTICIPANTS = 16
_GALLERY_NOTE = (
    "each participant publishes audio+video and receives last-N = 6 video (the teacher, "
    "publisher-0, pinned among them) and the top-3 audio; 3 speak (RFC 6464 level -20 dBov, the "
    "rest -127), the next 3 every 5 s"
)
GALLERY = Scenario(
    "relay-gallery",
    "forward",
    publishers=GALLERY_PARTICIPANTS,
    subscribers=0,
    publishers_subscribe=True,
    last_n=6,
    speakers=3,
    rotate_every=5.0,
    simulcast=True,
    teacher=True,
    note=f"scaled down from 31 to {GALLERY_PARTICIPANTS} participants (with simulcast too, one "
    "generator core cannot send 31 x 3 streams and receive 31 x 9: at 24 it was saturated); "
    f"{_GALLERY_NOTE}; simulcast: every camera is also "
    "sent as a low layer (320x180, 15 fps, ~150 kbit/s) and each subscriber receives the "
    "teacher's camera (its large tile) at the high layer, the 5 others at the low layer: "
    "delivered_fps is the high-layer slots' frame rate, delivered_fps_low_layer the low-layer "
    "slots' (15 fps by design)",
)
GALLERY_SINGLE_LAYER = Scenario(
    "relay-gallery-single-layer",
    "forward",
    publishers=GALLERY_SINGLE_LAYER_PARTICIPANTS,
    subscribers=0,
    publishers_subscribe=True,
    last_n=6,
    speakers=3,
    rotate_every=5.0,
    teacher=True,
    note=f"relay-gallery without simulcast (every video at 640x360, 30 fps), scaled down from 31 "
    f"to {GALLERY_SINGLE_LAYER_PARTICIPANTS} participants (one generator core cannot receive "
    f"31 x 9 full-size streams); {_GALLERY_NOTE}",
)

# The comparison run's storms: twice as many as the main run's, half of them unpaced.
COMPARE_STORM_EVERY = 2.0

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        LECTURE,
        TRANSCODE_BASELINE,
        GALLERY,
        GALLERY_SINGLE_LAYER,
        FULL,
        FULL_GSO_COMPARED,
        KEYFRAME_STORM,
    )
}
