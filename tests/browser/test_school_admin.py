"""The school admin runs the roster from the browser: people, a new class, three pupils at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_admin_finds_a_pupil_creates_a_class_and_enrols_three_pupils_at_once(
    browser: Browser, demo_server: str, screenshot_dir: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, demo_server, "admin@demo.test")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="School").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ecole Jules-Ferry")
    page.screenshot(path=screenshot_dir / "school-admin-dashboard.png", full_page=True)

    page.get_by_role("navigation", name="School administration").get_by_role(
        "link", name="People"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("People")
    page.get_by_label("Search by name or email").fill("pupil12@")
    page.get_by_role("button", name="Search").click()
    people = page.get_by_test_id("people")
    expect(people.locator("tbody tr")).to_have_count(1)
    expect(people).to_contain_text("pupil12@demo.test")
    page.screenshot(path=screenshot_dir / "school-admin-people.png", full_page=True)

    page.get_by_role("navigation", name="School administration").get_by_role(
        "link", name="Classes"
    ).click()
    page.get_by_role("link", name="New class").click()
    page.get_by_label("Name").fill("6C Histoire")
    page.get_by_label("Course").select_option(label="Science")
    page.get_by_role("button", name="Create the class").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("6C Histoire")
    expect(page.locator("ul.messages[role=status]")).to_contain_text(
        "The class 6C Histoire was created."
    )

    page.get_by_label("Search by name or email").fill("Martin")
    page.get_by_role("button", name="Search").click()
    candidates = page.get_by_test_id("candidates")
    chosen = ["Léa Martin", "Adam Martin", "Zoé Martin"]
    for name in chosen:
        candidates.get_by_label(name).check()
    page.get_by_role("button", name="Enrol selected").click()
    expect(page.locator("ul.messages[role=status]")).to_contain_text("3 pupils were enrolled.")
    roster = page.get_by_test_id("roster")
    expect(roster.locator("label")).to_have_count(3)
    for name in chosen:
        expect(roster).to_contain_text(name)
    expect(page.get_by_role("heading", name="3 pupils")).to_be_visible()
    page.screenshot(path=screenshot_dir / "school-admin-class.png", full_page=True)

    # The audit log tells who did it.
    page.get_by_role("navigation", name="School administration").get_by_role(
        "link", name="Audit log"
    ).click()
    log = page.get_by_test_id("audit")
    expect(log.locator("tbody tr", has_text="Enrolled")).to_have_count(3)
    expect(log.locator("tbody tr", has_text="Class created")).to_contain_text("Anne Dubois")
    page.screenshot(path=screenshot_dir / "school-admin-audit.png", full_page=True)

    # The class's own page shows them too.
    page.get_by_role("navigation", name="School administration").get_by_role(
        "link", name="Classes"
    ).click()
    expect(page.get_by_test_id("classes").locator("tr", has_text="6C Histoire")).to_contain_text(
        "3"
    )
    page.get_by_test_id("classes").get_by_role("link", name="6C Histoire").click()
    page.get_by_role("link", name="Class page").click()
    expect(page.locator(".roster--pupils li")).to_have_count(3)
    context.close()


def test_admin_pages_fit_a_phone(browser: Browser, demo_server: str, screenshot_dir: Path) -> None:
    """At 390 px wide the people list and a class's page scroll down, never sideways."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    log_in(page, demo_server, "admin@demo.test")
    page.get_by_role("link", name="School", exact=True).click()
    page.get_by_role("navigation", name="School administration").get_by_role(
        "link", name="People"
    ).click()
    expect(page.get_by_test_id("people")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=screenshot_dir / "school-admin-people-phone.png")
    page.get_by_role("navigation", name="School administration").get_by_role(
        "link", name="Classes"
    ).click()
    page.get_by_test_id("classes").get_by_role("link", name="5B Maths").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("5B Maths")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=screenshot_dir / "school-admin-class-phone.png", full_page=True)
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Term")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=screenshot_dir / "school-admin-form-phone.png", full_page=True)
    context.close()
