"""What the live-lesson browser tests share: joining from the pages, waiting for media, grants.

Media is checked with each page's `pc.getStats()`, mapped to participants through the `tracks`
message the page exposes on `window.homeroomClassroom`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

JOIN = re.compile("^Join Fractions")
MEDIA_TIMEOUT_S = 15.0

# Every inbound RTP stream of the page's peer connection, with the participant and source that the
# relay says its receive slot carries.
INBOUND_JS = """async () => {
  const room = window.homeroomClassroom;
  if (!room.pc) return [];
  const stats = await room.pc.getStats();
  const tracks = room.tracks;
  const out = [];
  stats.forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    const slot = tracks[s.mid];
    out.push({
      mid: s.mid, kind: s.kind, frames: s.framesDecoded ?? 0, packets: s.packetsReceived ?? 0,
      participant: slot ? slot.participant : null, source: slot ? slot.source : null,
    });
  });
  return out;
}"""

# The frame width that the inbound RTP stream feeding one tile's <video> decodes now (0: none yet),
# found by the video's track (`trackIdentifier`), whatever the slot behind it carries.
TILE_FRAME_WIDTH_JS = """async (selector) => {
  const video = document.querySelector(selector);
  const track = video && video.srcObject ? video.srcObject.getVideoTracks()[0] : null;
  const pc = window.homeroomClassroom.pc;
  if (!track || !pc) return 0;
  const stats = await pc.getStats();
  let width = 0;
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.trackIdentifier === track.id) width = s.frameWidth ?? 0;
  });
  return width;
}"""

# Every outbound video stream of the page's peer connection, with the source its mid carries
# (`camera`, `camera-low` or `screen`, as the page's offer names them).
OUTBOUND_VIDEO_JS = """async () => {
  const room = window.homeroomClassroom;
  if (!room.pc) return [];
  const sources = room.sources;
  const stats = await room.pc.getStats();
  const out = [];
  stats.forEach((s) => {
    if (s.type !== "outbound-rtp" || s.kind !== "video") return;
    out.push({
      mid: s.mid, source: sources[s.mid] ?? null,
      width: s.frameWidth ?? 0, height: s.frameHeight ?? 0, frames: s.framesEncoded ?? 0,
    });
  });
  return out;
}"""


@dataclass
class Member:
    """One person in the lesson: their page, and who the relay says they are."""

    context: BrowserContext
    page: Page
    id: str = ""
    name: str = ""

    def learn_who(self) -> None:
        you = self.page.evaluate("window.homeroomClassroom.state.you")
        self.id, self.name = you["id"], you["name"]

    def inbound(self) -> list[dict[str, Any]]:
        streams: list[dict[str, Any]] = self.page.evaluate(INBOUND_JS)
        return streams

    def receives(self, other: Member, source: str, field: str) -> None:
        """Wait until some frames or packets of `other`'s source have arrived."""
        wait_until(
            lambda: self.received(other.id, source, field) > 0,
            f"{self.name} receives {other.name}'s {source} {field}",
        )

    def received(self, participant: str, source: str, field: str) -> int:
        """Frames decoded or packets received from one participant's source, over all slots."""
        return sum(
            s[field]
            for s in self.inbound()
            if s["participant"] == participant and s["source"] == source
        )

    def tile_frame_width(self, participant: str, *, stage: bool) -> int:
        """The width at which this page decodes the camera on `participant`'s tile, large or
        thumbnail."""
        place = "[data-stage]" if stage else "[data-thumbs]"
        selector = f'{place} .tile[data-participant="{participant}"] video'
        width: int = self.page.evaluate(TILE_FRAME_WIDTH_JS, selector)
        return width

    def outbound_video(self) -> list[dict[str, Any]]:
        """What this page encodes and sends: one entry per video transceiver with frames."""
        streams: list[dict[str, Any]] = self.page.evaluate(OUTBOUND_VIDEO_JS)
        return streams


def wait_until(check: Callable[[], bool], what: str, timeout: float = MEDIA_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.2)


def screenshots(page: Page, folder: Path, name: str) -> None:
    """The page at desktop and at phone width, where nothing may scroll sideways."""
    page.screenshot(path=folder / f"{name}.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=folder / f"{name}-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def pupil_joins_from_my_week(page: Page, base: str) -> None:
    page.goto(f"{base}/week/")
    page.get_by_role("link", name=JOIN).first.click()
    expect(page.locator("[data-lesson-room]")).to_have_attribute("data-role", "pupil")


def teacher_joins_from_home(page: Page, screenshot_dir: Path) -> None:
    page.get_by_role("link", name=JOIN).first.click()
    expect(page.get_by_role("button", name="Join lesson")).to_be_visible()
    # The preview shows the camera before anyone is in: the teacher sees themselves first.
    expect(page.locator("[data-preview-video]")).to_have_js_property("readyState", 4)
    screenshots(page, screenshot_dir, "lesson-teacher-preview")
    page.get_by_role("button", name="Join lesson").click()


def in_room(member: Member) -> None:
    expect(member.page.locator("[data-lesson-room]")).to_have_attribute("data-state", "room")
    member.learn_who()


def allow_and_switch_on(teacher: Page, pupil: Member) -> None:
    """The teacher allows the pupil's microphone and camera; the pupil switches both on."""
    grant(teacher, pupil, "mic")
    grant(teacher, pupil, "camera")
    for tool in ("Microphone", "Camera"):
        button = pupil.page.get_by_role("button", name=tool)
        expect(button).to_be_enabled()
        button.click()
        expect(button).to_have_attribute("aria-pressed", "true")


def grant(teacher: Page, pupil: Member, source: str) -> None:
    label = {"mic": "Mic", "camera": "Camera", "screen": "Screen"}[source]
    button = teacher.get_by_role("button", name=f"Allow {label} for {pupil.name}")
    expect(button).to_have_attribute("aria-pressed", "false")
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
