"""Course colours: a course's own colour when it has one, else a stable palette colour, and
always readable text on it."""

from __future__ import annotations

import random

import pytest

from classrooms.timetable.colors import (
    BLACK,
    PALETTE,
    WHITE,
    contrast_ratio,
    course_colors,
)

AA = 4.5
INK = "#1d2433"  # the page's text colour, written on a card's tint


@pytest.mark.parametrize("color", PALETTE)
def test_every_palette_colour_carries_white_text_at_aa_contrast(color):
    assert contrast_ratio(color, WHITE) >= AA
    assert course_colors(course_id=0, color=color).ink == WHITE


def test_the_palette_colours_are_all_different_and_none_is_the_live_red():
    assert len(set(PALETTE)) == len(PALETTE)
    assert "#c62828" not in PALETTE


def test_a_course_without_a_colour_always_gets_the_same_one():
    assert course_colors(course_id=7).color == course_colors(course_id=7).color == PALETTE[7]
    assert course_colors(course_id=7 + len(PALETTE)).color == PALETTE[7]
    assert course_colors(course_id=1).color != course_colors(course_id=2).color


@pytest.mark.parametrize("bad", ["", "red", "#fff", "#12345g", "#1234567", '#123456" onclick="'])
def test_a_missing_or_malformed_colour_falls_back_to_the_palette(bad):
    assert course_colors(course_id=3, color=bad).color == PALETTE[3]


def test_a_course_s_own_colour_wins_and_takes_the_more_readable_ink():
    assert course_colors(course_id=3, color="#FFFF00").color == "#ffff00"
    assert course_colors(course_id=3, color="#ffff00").ink == BLACK
    assert course_colors(course_id=3, color="#000080").ink == WHITE


def test_any_colour_gets_ink_and_a_tint_readable_at_aa():
    """Whatever colour a school picks, the chip's ink and the card's text stay readable."""
    rng = random.Random(5545)  # noqa: S311 - a fixed sample of colours, not a secret
    for _ in range(500):
        color = f"#{rng.randrange(0x1000000):06x}"
        colors = course_colors(course_id=0, color=color)
        assert contrast_ratio(colors.color, colors.ink) >= AA, color
        assert contrast_ratio(colors.tint, INK) >= 7, color


def test_the_style_attribute_holds_only_the_three_colours():
    style = course_colors(course_id=0, color="#1F6F5C").style
    assert style == "--course: #1f6f5c; --course-ink: #ffffff; --course-tint: #e0ebe8"
