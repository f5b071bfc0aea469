"""A pupil's first minute in Homeroom, in a real Chromium against a real server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_pupil_sees_the_live_lesson_on_my_week_and_reaches_the_class(
    browser: Browser, demo_server: str, screenshot_dir: Path
) -> None:
    """pupil1 logs in, finds today's live 5B Maths lesson on "My week", opens the class page
    from it, and the lesson's Join button takes them to its lobby until a teacher comes."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, demo_server, "pupil1@demo.test")

    expect(page.get_by_role("heading", name="My week")).to_be_visible()
    today = page.get_by_test_id("today")
    live = today.locator(".lesson--live")
    expect(live).to_have_count(1)
    expect(live).to_contain_text("5B Maths")
    expect(live).to_contain_text("Live now")
    join = live.get_by_role("link", name=re.compile("^Join"))
    expect(join).to_be_visible()
    page.screenshot(path=screenshot_dir / "pupil-home.png", full_page=True)

    live.get_by_role("link", name="5B Maths").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("5B Maths")
    expect(page.get_by_role("heading", name="Roster")).to_be_visible()
    expect(page.locator(".roster--pupils li")).to_have_count(30)
    page.screenshot(path=screenshot_dir / "class-page.png", full_page=True)

    # No teacher is in the lesson yet, so the school's policy holds the pupil in the lobby.
    page.get_by_role("link", name=re.compile("^Join")).first.click()
    expect(page.locator("[data-lobby-text]")).to_have_text(
        re.compile("Waiting for your teacher"), timeout=10_000
    )
    expect(page.locator("[data-lesson-room]")).to_have_attribute("data-role", "pupil")
    context.close()


def test_home_page_is_usable_at_phone_width(
    browser: Browser, demo_server: str, screenshot_dir: Path
) -> None:
    """At 390 px wide the Join button of the live lesson is on screen without scrolling sideways."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    log_in(page, demo_server, "pupil2@demo.test")
    join = page.get_by_test_id("today").get_by_role("link", name=re.compile("^Join")).first
    expect(join).to_be_visible()
    box = join.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390
    page.screenshot(path=screenshot_dir / "pupil-home-phone.png", full_page=True)
    context.close()


def test_teacher_and_admin_see_their_home_pages(
    browser: Browser, demo_server: str, screenshot_dir: Path
) -> None:
    """The teacher sees their classes and next lessons; the school admin sees the counts."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, demo_server, "teacher@demo.test")
    expect(page.get_by_role("heading", name="My classes")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("5B Maths"))).not_to_have_count(0)
    page.screenshot(path=screenshot_dir / "teacher-home.png", full_page=True)
    page.get_by_role("button", name="Log out").click()

    log_in(page, demo_server, "admin@demo.test")
    overview = page.get_by_role("region", name="School overview")
    expect(overview.locator(".stat", has_text="Pupils")).to_contain_text("60")
    expect(overview.locator(".stat", has_text="Teachers")).to_contain_text("3")
    page.screenshot(path=screenshot_dir / "admin-home.png", full_page=True)
    context.close()
