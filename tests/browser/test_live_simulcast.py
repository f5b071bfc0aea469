"""Simulcast in real Chromium against the real relay: the large tile high, thumbnails low.

Each page sends its camera twice, full size on `camera` and at most 320 wide on `camera-low`, and
tells the relay whose camera its large tile shows (`stage`). The relay sends every viewer the high
layer of that camera and the low layer of the others. The teacher and two pupils are in "5B
Maths" with their cameras on (Chromium's fake camera, 640x480): on a pupil's page the teacher's
camera on the large tile decodes at full width and the other pupil's thumbnail at thumbnail
width; on the teacher's page both pupils' thumbnails decode at thumbnail width. Widths come from
`pc.getStats()`, the inbound stream whose track plays in the tile's <video>; the `stage` messages
each page sends are recorded by wrapping its WebSocket's `send`. The pupils are pupil8 and pupil9,
whom no other browser test uses, so that the grants given here change nothing elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import person
from tests.browser.live import (
    Member,
    allow_and_switch_on,
    in_room,
    pupil_joins_from_my_week,
    teacher_joins_from_home,
    wait_until,
)

pytestmark = pytest.mark.browser

FULL_WIDTH = 600
THUMBNAIL_WIDTH = 320
# Chromium grows its encoder with its bandwidth estimate. Before the page's start-bitrate hint the
# high layer took 5-20 s to reach full size after a join (over 45 s in about one run in five on
# this busy 2-core machine); with it, about a second. The margin is for a loaded machine.
LAYER_TIMEOUT_S = 90.0

# The send transceivers that carry the camera (`camera` and `camera-low`) and their tracks' ids.
CAMERA_SENDERS_JS = """() => {
  const room = window.homeroomClassroom;
  const out = {};
  for (const transceiver of room.pc.getTransceivers()) {
    const source = room.sources[transceiver.mid];
    if (source === "camera" || source === "camera-low") {
      const track = transceiver.sender.track;
      out[source] = track && track.readyState === "live" ? track.id : null;
    }
  }
  return out;
}"""

# Records on `window.stageSent` the `participant` of every `stage` message the page sends.
STAGE_SPY_JS = """(() => {
  const send = WebSocket.prototype.send;
  window.stageSent = [];
  WebSocket.prototype.send = function (data) {
    const message = JSON.parse(data);
    if (message.type === "stage") window.stageSent.push(message.participant);
    return send.call(this, data);
  };
})();"""


def stage_sent(member: Member) -> list[str | None]:
    """Whose camera the page has said its large tile shows, in `stage` messages, oldest first."""
    sent: list[str | None] = member.page.evaluate("window.stageSent")
    return sent


@dataclass
class Lesson:
    teacher: Member
    pupil_a: Member
    pupil_b: Member


@pytest.fixture(scope="module")
def lesson(browser: Browser, demo_server: str, screenshot_dir: Path) -> Iterator[Lesson]:
    """The teacher and two pupils in the live lesson, both pupils with microphone and camera on."""
    teacher = Member(*person(browser, demo_server, "teacher@demo.test"))
    teacher.context.add_init_script(STAGE_SPY_JS)
    teacher_joins_from_home(teacher.page, screenshot_dir)
    in_room(teacher)
    pupils = []
    for email in ("pupil8@demo.test", "pupil9@demo.test"):
        pupil = Member(*person(browser, demo_server, email))
        pupil.context.add_init_script(STAGE_SPY_JS)
        pupil_joins_from_my_week(pupil.page, demo_server)
        in_room(pupil)
        allow_and_switch_on(teacher.page, pupil)
        pupils.append(pupil)
    yield Lesson(teacher=teacher, pupil_a=pupils[0], pupil_b=pupils[1])
    for member in (teacher, *pupils):
        member.context.close()


def decodes(viewer: Member, other: Member, *, stage: bool, wide: bool) -> None:
    """Wait until `viewer` decodes `other`'s camera on the large tile or a thumbnail at full
    width (`wide`) or at thumbnail width."""

    def check() -> bool:
        width = viewer.tile_frame_width(other.id, stage=stage)
        return width >= FULL_WIDTH if wide else 0 < width <= THUMBNAIL_WIDTH

    tile = "the large tile" if stage else "a thumbnail"
    size = "full" if wide else "thumbnail"
    wait_until(
        check, f"{viewer.name} decodes {other.name} on {tile} at {size} width", LAYER_TIMEOUT_S
    )


def test_a_camera_goes_out_twice_full_size_and_thumbnail_size(lesson: Lesson) -> None:
    """The pupil's page encodes its camera on two transceivers: the 640x480 camera as it is, and
    a copy at most 320 wide."""
    pupil = lesson.pupil_a

    def widths() -> dict[str, int]:
        return {s["source"]: s["width"] for s in pupil.outbound_video() if s["frames"] > 0}

    wait_until(
        lambda: (
            widths().get("camera", 0) >= FULL_WIDTH
            and 0 < widths().get("camera-low", 0) <= THUMBNAIL_WIDTH
        ),
        "pupil A encodes the camera at full and at thumbnail width",
        LAYER_TIMEOUT_S,
    )
    assert "screen" not in widths()


# The page's own SDP helper, imported from the module the page loaded, run on sample answers.
START_BITRATE_SAMPLES_JS = """async () => {
  const url = performance.getEntriesByType("resource").map((entry) => entry.name)
    .find((name) => /\\/classroom\\/media(\\.[0-9a-f]+)?\\.js/.test(name));
  const { withStartBitrate } = await import(url);
  const section = (...lines) => lines.join("\\r\\n");
  return {
    bare: withStartBitrate(section("m=video 9 UDP/TLS/RTP/SAVPF 96 97", "a=rtpmap:96 VP8/90000",
      "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96", "")),
    fmtp: withStartBitrate(section("a=rtpmap:96 VP8/90000", "a=fmtp:96 max-fr=30", "")),
    hinted: withStartBitrate(section("a=rtpmap:96 VP8/90000",
      "a=fmtp:96 x-google-start-bitrate=500", "")),
    audio: withStartBitrate(section("a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10", "")),
  };
}"""


def vp8_fmtp(sdp: str) -> list[str]:
    """The fmtp parameters of every VP8 payload type in `sdp`, one entry per fmtp line."""
    lines = sdp.split("\r\n")
    vp8 = {m.group(1) for m in (re.match(r"a=rtpmap:(\d+) VP8/90000", x) for x in lines) if m}
    return [
        x.split(" ", 1)[1] for x in lines if x.startswith("a=fmtp:") and x[7:].split(" ")[0] in vp8
    ]


def test_the_page_starts_its_send_estimate_where_a_camera_s_two_layers_need_it(
    lesson: Lesson,
) -> None:
    """Chromium starts a connection's send estimate at 300 kbit/s and, with REMB alone, grows it
    ~8 % a second: the full-size layer stayed small for ~20 s after a join. The page gives the
    relay's answer a start-bitrate hint on VP8 (and on nothing else) before applying it."""
    applied = lesson.pupil_a.page.evaluate("window.homeroomClassroom.pc.remoteDescription.sdp")
    hints = vp8_fmtp(applied)
    assert hints
    assert all("x-google-start-bitrate=1000" in hint for hint in hints)
    samples = lesson.pupil_a.page.evaluate(START_BITRATE_SAMPLES_JS)
    assert "a=rtpmap:96 VP8/90000\r\na=fmtp:96 x-google-start-bitrate=1000\r\n" in samples["bare"]
    assert "a=fmtp:97 apt=96\r\n" in samples["bare"]
    assert "a=fmtp:96 max-fr=30;x-google-start-bitrate=1000\r\n" in samples["fmtp"]
    assert vp8_fmtp(samples["fmtp"]) == ["max-fr=30;x-google-start-bitrate=1000"]
    assert vp8_fmtp(samples["hinted"]) == ["x-google-start-bitrate=500"]
    assert "start-bitrate" not in samples["audio"]


def test_a_pupil_sees_the_teacher_on_stage_high_and_the_other_pupil_low(
    lesson: Lesson, screenshot_dir: Path
) -> None:
    """The pupil's page says the teacher's camera is on its large tile; it decodes it at full
    width, and the other pupil's thumbnail at thumbnail width."""
    viewer = lesson.pupil_a
    stage = viewer.page.locator("[data-stage] .tile")
    expect(stage).to_have_attribute("data-participant", lesson.teacher.id)
    assert stage_sent(viewer)[-1] == lesson.teacher.id
    decodes(viewer, lesson.teacher, stage=True, wide=True)
    decodes(viewer, lesson.pupil_b, stage=False, wide=False)
    viewer.page.screenshot(path=screenshot_dir / "simulcast-pupil.png", full_page=True)


def test_the_teacher_sees_every_pupils_thumbnail_low(lesson: Lesson, screenshot_dir: Path) -> None:
    """The teacher's page, whose large tile is the teacher's own camera, names no camera on stage
    and decodes both pupils' thumbnails at thumbnail width."""
    viewer = lesson.teacher
    expect(viewer.page.locator("[data-thumbs] .tile")).to_have_count(2)
    # The teacher's large tile shows the teacher's own camera, which the relay does not send back.
    sent = stage_sent(viewer)
    assert sent
    assert set(sent) == {None}
    for pupil in (lesson.pupil_a, lesson.pupil_b):
        decodes(viewer, pupil, stage=False, wide=False)
    viewer.page.screenshot(path=screenshot_dir / "simulcast-teacher.png", full_page=True)


def test_a_shared_screen_sends_the_teachers_camera_to_a_thumbnail_at_the_low_layer(
    lesson: Lesson,
) -> None:
    """The teacher shares the screen: it takes the large tile, the pupil's page says the stage
    shows no camera, and the teacher's camera, now a thumbnail, comes at thumbnail width; when the
    share stops, the camera is back on the large tile at full width."""
    viewer = lesson.pupil_a
    share = lesson.teacher.page.get_by_role("button", name="Share screen")
    share.click()
    expect(share).to_have_attribute("aria-pressed", "true")
    stage = viewer.page.locator("[data-stage]")
    expect(stage).to_have_class(re.compile("stage--screen"))
    wait_until(
        lambda: stage_sent(viewer)[-1] is None, "the pupil's page says no camera is on stage"
    )
    decodes(viewer, lesson.teacher, stage=False, wide=False)
    share.click()
    expect(share).to_have_attribute("aria-pressed", "false")
    expect(stage).not_to_have_class(re.compile("stage--screen"))
    wait_until(
        lambda: stage_sent(viewer)[-1] == lesson.teacher.id,
        "the pupil's page says the teacher's camera is on stage again",
    )
    decodes(viewer, lesson.teacher, stage=True, wide=True)


def test_after_a_reconnect_the_page_says_again_whose_camera_is_on_stage(lesson: Lesson) -> None:
    """The relay forgets the stage with the socket: a pupil whose socket dropped says it again on
    the new one, and gets the teacher's camera at full width again."""
    pupil = lesson.pupil_a
    before = len(stage_sent(pupil))
    pupil.page.evaluate("window.homeroomClassroom.socket.close(3000)")
    banner = pupil.page.get_by_text("Reconnecting…")
    expect(banner).to_be_visible()
    expect(banner).to_be_hidden(timeout=10_000)
    wait_until(
        lambda: stage_sent(pupil)[before:] == [lesson.teacher.id],
        "the rejoined page says the teacher's camera is on stage, once",
    )
    decodes(pupil, lesson.teacher, stage=True, wide=True)


def test_switching_the_camera_off_and_on_moves_both_layers(lesson: Lesson) -> None:
    """Both camera transceivers carry the camera exactly when it is on: off leaves both empty,
    on again gives both the same new track."""
    page = lesson.pupil_b.page
    camera = page.get_by_role("button", name="Camera")
    camera.click()
    expect(camera).to_have_attribute("aria-pressed", "false")
    wait_until(
        lambda: page.evaluate(CAMERA_SENDERS_JS) == {"camera": None, "camera-low": None},
        "neither camera transceiver carries a track",
    )
    camera.click()
    expect(camera).to_have_attribute("aria-pressed", "true")

    def same_track() -> bool:
        senders: dict[str, str | None] = page.evaluate(CAMERA_SENDERS_JS)
        return senders["camera"] is not None and senders["camera"] == senders["camera-low"]

    wait_until(same_track, "both camera transceivers carry the new camera track")
