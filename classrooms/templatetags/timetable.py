"""Template helpers for lessons: times in the school's zone and the Join button."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils import formats

from classrooms.models import Lesson, School

register = template.Library()


@register.filter
def school_time(value: datetime, school: School) -> str:
    """A time of day in the school's time zone, on the 24-hour clock timetables use."""
    return formats.time_format(value.astimezone(school.tzinfo), "H:i")


@register.filter
def school_date(value: datetime, school: School) -> str:
    """A day in the school's time zone, with the weekday and month named in the active language."""
    return formats.date_format(value.astimezone(school.tzinfo), "l j F")


@register.inclusion_tag("classrooms/_join_button.html")
def join_button(lesson: Lesson, now: datetime) -> dict[str, Any]:
    """Join is a live link from a few minutes before the start until the end; else it says why."""
    return {
        "lesson": lesson,
        "school": lesson.school,
        "joinable": lesson.is_joinable(now),
        "cancelled": lesson.state == "cancelled",
        "over": lesson.state == "ended" or lesson.ends_at <= now,
    }
