"""The live lesson in real Chromium against the real relay: a teacher and two pupils in "5B Maths".

The tests share one server, one browser and one lesson, and run in file order: the module's
fixture brings everyone in (a pupil waits in the lobby until the teacher joins, the teacher grants
both pupils their microphone and camera), then each test moves the lesson on. The pupils are
pupil3 and pupil4, so that the other browser tests, which use pupil1 and pupil2, find the lesson as
they expect whatever this module did. Media is checked with each page's `pc.getStats()`, mapped
to participants through the `tracks` message the page exposes on `window.homeroomClassroom`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import person
from tests.browser.live import (
    Member,
    allow_and_switch_on,
    grant,
    in_room,
    pupil_joins_from_my_week,
    screenshots,
    teacher_joins_from_home,
    wait_until,
)

pytestmark = pytest.mark.browser


@dataclass
class Lesson:
    teacher: Member
    pupil_a: Member
    pupil_b: Member

    @property
    def everyone(self) -> list[Member]:
        return [self.teacher, self.pupil_a, self.pupil_b]


@pytest.fixture(scope="module")
def lesson(browser: Browser, demo_server: str, screenshot_dir: Path) -> Iterator[Lesson]:
    """The teacher and two pupils in the live lesson, both pupils with microphone and camera on."""
    pupil_a = Member(*person(browser, demo_server, "pupil3@demo.test"))
    pupil_joins_from_my_week(pupil_a.page, demo_server)
    expect(pupil_a.page.get_by_role("heading", name="Waiting for your teacher…")).to_be_visible()
    screenshots(pupil_a.page, screenshot_dir, "lesson-lobby")

    teacher = Member(*person(browser, demo_server, "teacher@demo.test"))
    teacher.page.screenshot(path=screenshot_dir / "lesson-teacher-home.png")
    teacher_joins_from_home(teacher.page, screenshot_dir)
    in_room(teacher)
    in_room(pupil_a)

    pupil_b = Member(*person(browser, demo_server, "pupil4@demo.test"))
    pupil_joins_from_my_week(pupil_b.page, demo_server)
    in_room(pupil_b)

    for pupil in (pupil_a, pupil_b):
        # Pupils start muted with the camera off, by school policy, until the teacher allows them.
        expect(pupil.page.get_by_role("button", name="Microphone")).to_be_disabled()
        allow_and_switch_on(teacher.page, pupil)
    yield Lesson(teacher=teacher, pupil_a=pupil_a, pupil_b=pupil_b)
    for member in (teacher, pupil_a, pupil_b):
        member.context.close()


def test_everyone_sees_and_hears_everyone_else(lesson: Lesson, screenshot_dir: Path) -> None:
    """Each page decodes video frames and receives audio packets from both other people."""
    for viewer in lesson.everyone:
        for other in lesson.everyone:
            if other is viewer:
                continue
            viewer.receives(other, "camera", "frames")
            viewer.receives(other, "mic", "packets")
    page = lesson.teacher.page
    expect(page.locator("[data-stage] .tile")).to_have_attribute(
        "data-participant", lesson.teacher.id
    )
    expect(page.locator("[data-thumbs] .tile")).to_have_count(2)
    screenshots(page, screenshot_dir, "lesson-teacher")
    screenshots(lesson.pupil_a.page, screenshot_dir, "lesson-pupil")


# The page's RTCP from the relay, per RTP stream with packets: for each received stream, the
# packets the relay's last sender report said were sent (Chromium's remote-outbound-rtp); for each
# sent one, the packets the relay's last receiver report said were received (remote-inbound-rtp
# counts them as packetsReceived, or only has lost ones); -1 before any report was taken.
RELAY_REPORTS_JS = """async () => {
  const stats = await window.homeroomClassroom.pc.getStats();
  const out = { received: [], sent: [] };
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.packetsReceived) {
      const report = s.remoteId ? stats.get(s.remoteId) : null;
      out.received.push(report ? report.packetsSent : -1);
    }
    if (s.type === "outbound-rtp" && s.packetsSent) {
      const report = s.remoteId ? stats.get(s.remoteId) : null;
      out.sent.push(report ? report.packetsLost ?? 0 : -1);
    }
  });
  return out;
}"""


def test_every_stream_gets_the_relays_rtcp_reports_both_ways(lesson: Lesson) -> None:
    """Browsers line audio up with video by RTCP sender reports, and pace their sending by
    receiver reports. The relay sends its sender reports of a connection in one compound packet;
    Chromium takes a sender report for every stream it receives and a receiver report for every
    stream it sends."""
    for member in lesson.everyone:

        def reported(member: Member = member) -> bool:
            reports: dict[str, list[int]] = member.page.evaluate(RELAY_REPORTS_JS)
            received, sent = reports["received"], reports["sent"]
            return (
                len(received) >= 4
                and all(count > 0 for count in received)
                and len(sent) >= 2
                and all(lost >= 0 for lost in sent)
            )

        wait_until(reported, f"{member.name}'s page has the relay's reports for every stream")


def test_a_muted_pupil_is_heard_by_nobody(lesson: Lesson) -> None:
    """The teacher mutes pupil A: the teacher's and pupil B's inbound audio from A stops."""
    muted = lesson.pupil_a
    lesson.teacher.page.get_by_role("button", name=f"Mute {muted.name}").click()
    expect(muted.page.get_by_role("button", name="Microphone")).to_have_attribute(
        "aria-pressed", "false"
    )
    time.sleep(1.0)
    before = [m.received(muted.id, "mic", "packets") for m in (lesson.teacher, lesson.pupil_b)]
    time.sleep(1.0)
    after = [m.received(muted.id, "mic", "packets") for m in (lesson.teacher, lesson.pupil_b)]
    assert after == before
    # Pupil B's microphone still arrives: only A was muted.
    first = lesson.teacher.received(lesson.pupil_b.id, "mic", "packets")
    wait_until(
        lambda: lesson.teacher.received(lesson.pupil_b.id, "mic", "packets") > first,
        "pupil B is still heard",
    )


def test_chat_reaches_everyone_and_the_teacher_can_delete_it(lesson: Lesson) -> None:
    page = lesson.pupil_a.page
    page.get_by_label("Message to the class").fill("Is 3/4 bigger than 2/3?")
    page.get_by_role("button", name="Send").click()
    for member in lesson.everyone:
        expect(member.page.locator("[data-chat]")).to_contain_text("Is 3/4 bigger than 2/3?")
    lesson.teacher.page.get_by_role(
        "button", name=f"Delete message from {lesson.pupil_a.name}"
    ).click()
    for member in lesson.everyone:
        expect(member.page.locator("[data-chat]")).not_to_contain_text("Is 3/4 bigger")


def test_in_a_locked_lesson_a_pupil_waits_until_admitted(
    lesson: Lesson, browser: Browser, demo_server: str
) -> None:
    teacher = lesson.teacher.page
    teacher.get_by_role("button", name="Lock").click()
    expect(teacher.get_by_role("button", name="Unlock")).to_be_visible()
    context, page = person(browser, demo_server, "pupil5@demo.test")
    pupil_joins_from_my_week(page, demo_server)
    expect(
        page.get_by_role("heading", name="The lesson is locked. Your teacher will let you in.")
    ).to_be_visible()
    lobby = teacher.locator("[data-lobby]")
    expect(lobby.locator(".person")).to_have_count(1)
    lobby.get_by_role("button", name=re.compile("^Admit")).click()
    expect(page.locator("[data-lesson-room]")).to_have_attribute("data-state", "room")
    expect(teacher.locator("[data-people] .person")).to_have_count(4)
    teacher.get_by_role("button", name="Unlock").click()
    expect(teacher.get_by_role("button", name="Lock")).to_be_visible()
    context.close()
    expect(teacher.locator("[data-people] .person")).to_have_count(3)


def test_a_pupil_shares_the_screen_only_after_the_grant(lesson: Lesson) -> None:
    sharer = lesson.pupil_b
    share = sharer.page.get_by_role("button", name="Share screen")
    expect(share).to_be_disabled()
    expect(share).to_have_attribute("title", "Your teacher has not allowed this yet")
    refused = sharer.page.evaluate(
        """() => new Promise((resolve) => {
          const socket = window.homeroomClassroom.socket;
          const listen = (event) => {
            const message = JSON.parse(event.data);
            if (message.type !== "error") return;
            socket.removeEventListener("message", listen);
            resolve(message.code);
          };
          socket.addEventListener("message", listen);
          socket.send(JSON.stringify({v: 1, type: "share", on: true}));
        })"""
    )
    assert refused == "not-granted"

    grant(lesson.teacher.page, sharer, "screen")
    expect(share).to_be_enabled()
    share.click()
    expect(share).to_have_attribute("aria-pressed", "true")
    for viewer in (lesson.teacher, lesson.pupil_a):
        stage = viewer.page.locator("[data-stage]")
        expect(stage).to_have_class(re.compile("stage--screen"))
        expect(stage.locator(".tile")).to_have_attribute("data-participant", sharer.id)
        viewer.receives(sharer, "screen", "frames")
        expect(stage.locator("video")).to_have_js_property("videoWidth", 1280)


def test_a_dropped_connection_comes_back_with_the_same_permissions(lesson: Lesson) -> None:
    """Pupil A's socket drops: the page says so, reconnects with a new peer connection, and the
    teacher's grants and A's camera come back without anyone doing anything."""
    pupil = lesson.pupil_a
    old_pc = pupil.page.evaluate_handle("window.homeroomClassroom.pc")
    pupil.page.evaluate("window.homeroomClassroom.socket.close(3000)")
    banner = pupil.page.get_by_text("Reconnecting…")
    expect(banner).to_be_visible()
    expect(banner).to_be_hidden(timeout=10_000)
    assert pupil.page.evaluate("(old) => window.homeroomClassroom.pc !== old", old_pc)
    expect(pupil.page.get_by_role("button", name="Microphone")).to_be_enabled()
    expect(pupil.page.get_by_role("button", name="Camera")).to_have_attribute(
        "aria-pressed", "true"
    )
    wait_until(
        lambda: (
            lesson.teacher.page.evaluate("window.homeroomClassroom.pc.connectionState")
            == "connected"
            and pupil.page.evaluate("window.homeroomClassroom.pc.connectionState") == "connected"
        ),
        "both peer connections are up",
    )
    before = lesson.teacher.received(pupil.id, "camera", "frames")
    wait_until(
        lambda: lesson.teacher.received(pupil.id, "camera", "frames") > before,
        "the teacher decodes pupil A's camera again",
    )


def test_a_removed_pupil_is_told_and_stays_out(lesson: Lesson, screenshot_dir: Path) -> None:
    removed = lesson.pupil_b
    teacher = lesson.teacher.page
    teacher.once("dialog", lambda dialog: dialog.accept())
    teacher.get_by_role("button", name=f"Remove {removed.name}").click()
    expect(
        removed.page.get_by_role("heading", name="You were removed from this lesson")
    ).to_be_visible()
    screenshots(removed.page, screenshot_dir, "lesson-removed")
    expect(teacher.locator("[data-people]")).not_to_contain_text(removed.name)
    expect(teacher.locator("[data-removed]")).to_contain_text(removed.name)
    removed.page.reload()
    expect(
        removed.page.get_by_role("heading", name="You were removed from this lesson")
    ).to_be_visible()
    assert removed.page.evaluate("window.homeroomClassroom.state.closeCode") == 4410


def test_the_attendance_page_lists_all_three(lesson: Lesson, demo_server: str) -> None:
    """The teacher's Attendance link opens the lesson's attendance, naming everyone who came;
    pupils have no such link."""
    expect(lesson.pupil_a.page.get_by_role("link", name="Attendance")).to_have_count(0)
    link = lesson.teacher.page.get_by_role("link", name="Attendance")
    href = link.get_attribute("href")
    assert href is not None
    # A second tab, so that the teacher stays in the lesson.
    page = lesson.teacher.context.new_page()
    page.goto(f"{demo_server}{href}")
    for member in lesson.everyone:
        expect(page.get_by_role("main")).to_contain_text(member.name)
    page.close()
