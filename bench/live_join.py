"""Click-to-first-remote-frame of the live lesson in real Chromium, and the relay's CPU meanwhile.

A teacher (camera and microphone on) and a pupil are in the demo's live "5B Maths" lesson; a third
participant, a pupil, joins ten times from "My week": leave, back to the week, click Join. Each
time the page measures, on its own clock, from the Join click (a listener on the link keeps the
time in sessionStorage across the navigation) to the first decoded frame of a remote video
(`requestVideoFrameCallback`, kept by the classroom client as `firstRemoteFrameAt`). The relay is
the daphne process: its CPU time over the joins comes from /proc/<pid>/stat, as % of one core (an
upper bound: the same process also serves the pages the joins load).
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect, sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, person, run_demo_server

JOINS = 10
# The relay lets one user open a lesson socket 5 times at once, then once every 2 s: the joins are
# paced so that none of them is refused.
JOIN_EVERY_S = 2.2
JOIN_LINK = "Join Fractions: adding and comparing"
# The click's time, on the page's clock, survives the navigation to the lesson in sessionStorage.
REMEMBER_CLICK_JS = """(name) => {
  const link = [...document.querySelectorAll("a[aria-label]")].find((a) => a.ariaLabel === name);
  link.addEventListener("click", () => {
    sessionStorage.setItem("joinClickedAt", String(performance.timeOrigin + performance.now()));
  });
}"""
FIRST_FRAME_JS = "() => window.homeroomClassroom?.state.firstRemoteFrameAt ?? null"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _join_once(page: Page, base: str) -> dict[str, float]:
    """Milliseconds from the Join click to each step of the join, the first remote frame last."""
    page.goto(f"{base}/week/")
    page.evaluate(REMEMBER_CLICK_JS, JOIN_LINK)
    page.get_by_role("link", name=JOIN_LINK).first.click()
    page.wait_for_function(FIRST_FRAME_JS, timeout=20_000)
    clicked = float(page.evaluate("sessionStorage.getItem('joinClickedAt')"))
    marks: dict[str, float] = page.evaluate("window.homeroomClassroom.state.marks")
    page.get_by_role("button", name="Leave").click()
    expect(page.get_by_role("heading", name="You left the lesson")).to_be_visible()
    return {step: at - clicked for step, at in marks.items()}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def bench_live_join(seconds: float) -> dict[str, Any]:
    """`seconds` does not apply: the run is ten joins, however long they take."""
    work = Path(tempfile.mkdtemp(prefix="homeroom-live-join-"))
    (work / "data").mkdir()
    (work / "logs").mkdir()
    with (
        run_demo_server(f"sqlite:///{work / 'db.sqlite3'}", work / "data", work / "logs") as server,
        sync_playwright() as driver,
    ):
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _, teacher = person(browser, server.base, "teacher@demo.test")
        teacher.get_by_role("link", name=JOIN_LINK).first.click()
        teacher.get_by_role("button", name="Join lesson").click()
        expect(teacher.locator("[data-lesson-room]")).to_have_attribute("data-state", "room")
        _, pupil = person(browser, server.base, "pupil5@demo.test")
        pupil.goto(f"{server.base}/week/")
        pupil.get_by_role("link", name=JOIN_LINK).first.click()
        expect(pupil.locator("[data-lesson-room]")).to_have_attribute("data-state", "room")
        _, joiner = person(browser, server.base, "pupil6@demo.test")

        cpu_before, started = _cpu_seconds(server.pid), time.monotonic()
        joins = []
        for _ in range(JOINS):
            next_join = time.monotonic() + JOIN_EVERY_S
            joins.append(_join_once(joiner, server.base))
            time.sleep(max(0.0, next_join - time.monotonic()))
        cpu = _cpu_seconds(server.pid) - cpu_before
        elapsed = time.monotonic() - started
        browser.close()
    joins_ms = [join["firstFrame"] for join in joins]
    return {
        "participants": 3,
        "joins": JOINS,
        "click_to_first_remote_frame_ms": {
            "p50": round(statistics.median(joins_ms), 1),
            "p95": round(_percentile(joins_ms, 0.95), 1),
            "all": [round(ms, 1) for ms in joins_ms],
        },
        "goal_p95_ms": 1000,
        # Median time from the click to each step: page script running, hello, offer sent
        # (after ICE gathering), answer, peer connection up, first frame.
        "steps_p50_ms": {
            step: round(statistics.median(join[step] for join in joins), 1) for step in joins[0]
        },
        "relay_cpu_percent_of_one_core": round(100 * cpu / elapsed, 1),
        "run_seconds": round(elapsed, 1),
    }
