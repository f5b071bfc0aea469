"""The timetable in a real Chromium against a real server: a pupil's week with the live lesson,
Join from it, the calendar link; the teacher's week and the school admin's day; desktop and phone
widths, with screenshots for people to look at."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


def assert_no_sideways_scroll(page: Page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_pupil_joins_the_live_lesson_from_the_week_and_finds_the_calendar_link(
    browser: Browser, demo_server: str, screenshot_dir: Path
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    log_in(page, demo_server, "pupil1@demo.test")
    page.get_by_role("link", name="Open the full week").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My week")

    today = page.get_by_test_id("week-today")
    expect(today).to_be_visible()
    live = today.locator(".tt-lesson--live")
    expect(live).to_have_count(1)
    expect(live).to_contain_text("5B Maths")
    expect(live).to_contain_text("Live now")
    # Days are columns on a desktop: Monday's column sits left of today's on one row.
    columns = page.locator(".tt-day")
    first, today_box = columns.first.bounding_box(), today.bounding_box()
    assert first is not None
    assert today_box is not None
    if first != today_box:
        assert first["y"] == today_box["y"]
        assert first["x"] < today_box["x"]

    subscribe = page.get_by_role("link", name="Subscribe in your calendar app")
    expect(subscribe).to_have_attribute(
        "href", re.compile(r"^webcal://.+/calendar/[\w-]{43,}\.ics$")
    )
    feed = page.locator('link[rel="alternate"][type="text/calendar"]')
    href = feed.get_attribute("href")
    assert href is not None
    assert href.startswith(demo_server)
    answer = page.request.get(href)
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "BEGIN:VCALENDAR" in answer.text()
    page.screenshot(path=screenshot_dir / "timetable-pupil-week.png", full_page=True)

    # The pupil is let in: into the room if a teacher is there, else into its lobby.
    live.get_by_role("link", name=re.compile("^Join")).click()
    expect(page.locator("[data-lesson-room]")).to_have_attribute(
        "data-state", re.compile("^(room|lobby)$"), timeout=10_000
    )
    context.close()


def test_pupil_week_is_a_day_by_day_list_at_phone_width(
    browser: Browser, demo_server: str, screenshot_dir: Path
) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    page = context.new_page()
    log_in(page, demo_server, "pupil2@demo.test")
    page.goto(f"{demo_server}/week/")
    days = page.locator(".tt-day")
    expect(days.first).to_be_visible()
    first, second = days.nth(0).bounding_box(), days.nth(1).bounding_box()
    assert first is not None
    assert second is not None
    assert second["y"] > first["y"]
    join = page.get_by_test_id("week-today").get_by_role("link", name=re.compile("^Join")).first
    expect(join).to_be_visible()
    box = join.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"]
    assert_no_sideways_scroll(page, PHONE["width"])
    page.screenshot(path=screenshot_dir / "timetable-pupil-week-phone.png", full_page=True)
    context.close()


def test_teacher_week_class_week_and_the_admin_s_day(
    browser: Browser, demo_server: str, screenshot_dir: Path
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    log_in(page, demo_server, "teacher@demo.test")
    page.get_by_role("link", name="My teaching week").click()
    expect(page.get_by_text("You teach").first).to_be_visible()
    page.screenshot(path=screenshot_dir / "timetable-teacher-week.png", full_page=True)

    page.goto(f"{demo_server}/")
    page.get_by_role("link", name="5B Maths").first.click()
    page.get_by_role("link", name="Week view").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("5B Maths: the week")
    page.get_by_role("link", name=re.compile("Next week")).click()
    expect(page.get_by_role("link", name="This week")).to_be_visible()
    page.get_by_role("link", name="This week").click()
    expect(page.get_by_test_id("week-today").locator(".tt-lesson--live")).to_have_count(1)
    page.screenshot(path=screenshot_dir / "timetable-class-week.png", full_page=True)
    page.get_by_role("button", name="Log out").click()

    log_in(page, demo_server, "admin@demo.test")
    page.get_by_role("link", name="Every lesson today").click()
    table = page.get_by_test_id("school-day")
    expect(table).to_be_visible()
    expect(table.locator(".tt-row--live")).to_contain_text("5B Maths")
    page.screenshot(path=screenshot_dir / "timetable-school-day.png", full_page=True)
    page.set_viewport_size(PHONE)
    assert_no_sideways_scroll(page, PHONE["width"])
    page.screenshot(path=screenshot_dir / "timetable-school-day-phone.png", full_page=True)
    context.close()
