"""The school admin imports a OneRoster bundle from the browser: upload, preview, apply."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import log_in
from tests.classrooms.oneroster.builder import RosterBuilder

pytestmark = pytest.mark.browser


def demo_bundle() -> bytes:
    """The test bundle, addressed to the demo school's org, with class names the demo school does
    not use (the browser tests share one server, and the others look for the demo's classes)."""
    builder = RosterBuilder.school()
    builder.row("orgs.csv", builder.org).update(name="Ecole Jules-Ferry", identifier="demo")
    builder.row("classes.csv", "k-5b-maths").update(title="3C Maths (imported)")
    builder.row("classes.csv", "k-5b-french").update(title="3C French (imported)")
    return builder.zip()


def test_admin_uploads_a_bundle_reads_the_preview_and_applies_it(
    browser: Browser, demo_server: str, screenshot_dir: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, demo_server, "admin@demo.test")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="School").click()
    page.get_by_role("navigation", name="School administration").get_by_role(
        "link", name="Import and export"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Roster import and export")

    page.get_by_label("OneRoster bundle", exact=True).set_input_files(
        {"name": "sis-export.zip", "mimeType": "application/zip", "buffer": demo_bundle()}
    )
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Roster import")
    expect(page.get_by_text("Ready to apply")).to_be_visible(timeout=15_000)
    preview = page.get_by_role("region", name="What would change")
    expect(preview.get_by_role("row", name="People")).to_contain_text("5")
    page.screenshot(path=screenshot_dir / "roster-import-preview.png", full_page=True)

    page.get_by_role("button", name="Apply these changes").click()
    expect(page.locator("ul.messages[role=status]")).to_contain_text(
        "The roster import was applied."
    )
    expect(page.locator(".state")).to_have_text("Applied")
    page.screenshot(path=screenshot_dir / "roster-import-applied.png", full_page=True)

    page.get_by_role("navigation", name="School administration").get_by_role(
        "link", name="People"
    ).click()
    page.get_by_label("Search by name or email").fill("emile@school.test")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("people")).to_contain_text("Zola")
    context.close()
