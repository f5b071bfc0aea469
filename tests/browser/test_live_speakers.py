"""Active speakers and the speaker layout in real Chromium against the real relay.

The relay picks speakers from the RFC 6464 levels Chromium writes on its audio packets. Chromium's
fake microphone only beeps now and then, softer on average than speech (the relay hears it at
about -60 dBov): the teacher's counts as a quiet room. The pupil's page gets a steady tone at
about -9 dBov instead, so the pupil speaks. The pupil is pupil7, whom no other browser test uses,
so that the grants this module gives change nothing elsewhere.
"""

from __future__ import annotations

import re
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
)

pytestmark = pytest.mark.browser

# getUserMedia's microphone replaced by a 440 Hz tone at half of full scale, from Web Audio.
LOUD_MICROPHONE_JS = """(() => {
  const devices = navigator.mediaDevices;
  const original = devices.getUserMedia.bind(devices);
  devices.getUserMedia = async (constraints) => {
    const stream = await original(constraints);
    if (!constraints || !constraints.audio) return stream;
    const context = new AudioContext();
    const tone = context.createOscillator();
    const gain = context.createGain();
    const out = context.createMediaStreamDestination();
    gain.gain.value = 0.5;
    tone.connect(gain).connect(out);
    tone.start();
    for (const track of stream.getAudioTracks()) {
      stream.removeTrack(track);
      track.stop();
    }
    stream.addTrack(out.stream.getAudioTracks()[0]);
    return stream;
  };
})();"""

# The relay's mark; the page's own level meter adds `is-speaking` beside it now and then.
SPEAKER = re.compile(r"\bis-speaker\b")


def test_the_speaker_is_marked_and_takes_the_large_tile_in_speaker_layout(
    browser: Browser, demo_server: str, screenshot_dir: Path
) -> None:
    teacher = Member(*person(browser, demo_server, "teacher@demo.test"))
    teacher_joins_from_home(teacher.page, screenshot_dir)
    in_room(teacher)
    pupil = Member(*person(browser, demo_server, "pupil7@demo.test"))
    pupil.context.add_init_script(LOUD_MICROPHONE_JS)
    pupil_joins_from_my_week(pupil.page, demo_server)
    in_room(pupil)
    try:
        allow_and_switch_on(teacher.page, pupil)
        page = teacher.page
        speaking = page.locator(f'[data-people] .person[data-participant="{pupil.id}"]')
        expect(speaking).to_have_class(SPEAKER, timeout=15_000)
        expect(speaking).to_contain_text("Speaking")
        quiet = page.locator(f'[data-people] .person[data-participant="{teacher.id}"]')
        expect(quiet).not_to_have_class(SPEAKER)
        stage = page.locator("[data-stage] .tile")
        expect(stage).to_have_attribute("data-participant", teacher.id)

        layout = page.get_by_role("button", name="Follow the speaker")
        layout.click()
        expect(layout).to_have_attribute("aria-pressed", "true")
        # The teacher's own page shows the speaker other than themselves: the pupil.
        expect(stage).to_have_attribute("data-participant", pupil.id)
        expect(stage).to_have_class(SPEAKER)
        page.screenshot(path=screenshot_dir / "lesson-speaker-layout.png", full_page=True)

        layout.click()
        expect(layout).to_have_attribute("aria-pressed", "false")
        expect(stage).to_have_attribute("data-participant", teacher.id)
    finally:
        pupil.context.close()
        teacher.context.close()
