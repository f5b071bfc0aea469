"""How the timetable colours a course's lessons.

A course may carry its own colour (`Course.color`); a course without one gets a colour from a
fixed palette, chosen from its id so that it stays the same from page to page and week to week.
Text never sits on an arbitrary colour unchecked: the course's chip takes black or white ink,
whichever contrasts more (always at least 4.5:1, WCAG AA), and the lesson card itself is a pale
tint of the colour under the page's ordinary ink.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEX_COLOR_RE = re.compile(r"#[0-9a-fA-F]{6}")

# Saturated enough to tell apart, dark enough for white text (each is at least 4.5:1 on white,
# which a test holds), and none of them the red that marks a live lesson.
PALETTE = (
    "#1f6f5c",
    "#1d4ed8",
    "#7c3aed",
    "#9a3412",
    "#0f766e",
    "#a21caf",
    "#4d7c0f",
    "#be185d",
    "#0369a1",
    "#92400e",
    "#4338ca",
    "#475569",
)

BLACK = "#000000"
WHITE = "#ffffff"
# How much white is mixed into a course's colour for the background of its lesson cards.
TINT_WHITE = 0.86


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(channel):02x}" for channel in rgb)


def relative_luminance(color: str) -> float:
    """WCAG 2 relative luminance of an sRGB colour like "#1f6f5c"."""

    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(channel) for channel in _rgb(color))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two colours, from 1 (none) to 21 (black on white)."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@dataclass(frozen=True)
class CourseColors:
    """A course's colour, the ink to write on it, and the pale tint its lesson cards use."""

    color: str
    ink: str
    tint: str

    @property
    def style(self) -> str:
        """CSS custom properties for a `style` attribute; every value is a checked hex colour."""
        return f"--course: {self.color}; --course-ink: {self.ink}; --course-tint: {self.tint}"


def course_colors(*, course_id: int, color: str = "") -> CourseColors:
    """The course's own colour when it has a valid one, else the palette's colour for its id."""
    if not HEX_COLOR_RE.fullmatch(color):
        color = PALETTE[course_id % len(PALETTE)]
    color = color.lower()
    ink = WHITE if contrast_ratio(color, WHITE) >= contrast_ratio(color, BLACK) else BLACK
    red, green, blue = (channel * (1 - TINT_WHITE) + 255 * TINT_WHITE for channel in _rgb(color))
    tint = _hex((red, green, blue))
    return CourseColors(color=color, ink=ink, tint=tint)
