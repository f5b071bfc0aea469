"""The boundary between the relay and the school's domain.

The relay asks one question when someone opens a lesson's websocket: may this user join this lesson,
and as whom? `LessonAccessPolicy` is that question; `classrooms` answers it, and the setting
`HOMEROOM_LESSON_ACCESS_POLICY` names the class. Only the frozen dataclasses below cross the
boundary, never model instances, so the relay's asyncio code holds no ORM objects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class ParticipantRole(enum.StrEnum):
    TEACHER = "teacher"
    PUPIL = "pupil"


class Refusal(enum.IntEnum):
    """Why a user may not join, as the websocket close code the browser receives.

    A lesson that does not exist and one the user is not on the roster of are one refusal, so the
    code tells nobody whether a key is real.
    """

    NOT_ON_ROSTER = 4403
    NOT_OPEN = 4409


@dataclass(frozen=True)
class Admission:
    """A user let into a lesson, with what the relay needs to know about them."""

    lesson_key: str
    lesson_id: int
    school_id: int
    user_id: int
    role: ParticipantRole
    display_name: str
    lesson_title: str
    ends_at: datetime

    def __post_init__(self) -> None:
        if not self.display_name.strip():
            raise ValueError("A participant needs a display name from the roster.")
        if self.ends_at.tzinfo is None:
            raise ValueError("ends_at must be an aware datetime.")


class LessonAccessPolicy(Protocol):
    def admit(self, *, user_id: int, lesson_key: str) -> Admission | Refusal:
        """Decide whether a user may join a lesson now. Synchronous: it reads the database."""
        ...


@cache
def lesson_access_policy() -> LessonAccessPolicy:
    """The configured policy, built once per process."""
    policy_class = import_string(settings.HOMEROOM_LESSON_ACCESS_POLICY)
    policy: LessonAccessPolicy = policy_class()
    return policy
