"""Errors the scheduling services raise besides the plain `ValidationError` of bad input."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class ScheduleClash(ValidationError):  # noqa: N818 -- the name the API and the issue use
    """A lesson would overlap another lesson of the same class or of one of its teachers.

    The message names the other lesson (class, title, day and hours in the school's zone), so a
    form or an API answer can show it as it is. `lesson_id` is the other lesson's id.
    """

    def __init__(self, message: str, *, lesson_id: int) -> None:
        super().__init__(message, code="clash")
        self.lesson_id = lesson_id
