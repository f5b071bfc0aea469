"""The boundary between the relay and the school's domain.

The relay asks one question when someone opens a lesson's websocket: may this user join this lesson,
and as whom? `LessonAccessPolicy` is that question. While the lesson runs, the relay tells the
school's side what happened that must outlive the process: who was connected when (attendance),
grants and removals (moderation that must survive a restart), chat, and the end of the lesson.
`LessonRecorder` is that record. `classrooms` implements both; the settings
`HOMEROOM_LESSON_ACCESS_POLICY` and `HOMEROOM_LESSON_RECORDER` name the classes. Only the frozen
dataclasses below cross the boundary, never model instances, so the relay's asyncio code holds no
ORM objects. Every method is synchronous (it reads or writes the database): the relay calls them
through `database_sync_to_async`, on connect, on leave and on moderation or chat messages, never
per media packet.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
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
    # A teacher removed this user from this lesson; they stay out until a teacher lets them back.
    REMOVED = 4410


@dataclass(frozen=True)
class Grants:
    """What a participant may send: microphone, camera, screen. Teachers hold all three."""

    mic: bool
    camera: bool
    screen: bool


@dataclass(frozen=True)
class RoomPolicy:
    """The school's policy for its live lessons, as the relay applies it."""

    # Pupils who arrive before any teacher wait in the lobby.
    lobby_until_teacher: bool = True
    # Pupils' media is not forwarded while no teacher is connected.
    pause_pupils_without_teacher: bool = True


@dataclass(frozen=True)
class RemovedPupil:
    """A pupil a teacher removed from the lesson, whom a teacher may let back in."""

    user_id: int
    display_name: str


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
    # For a pupil: the grants a teacher gave in this lesson (kept across reconnects and restarts),
    # or the school's starting policy when there are none yet. For a teacher: everything.
    grants: Grants = Grants(mic=True, camera=True, screen=True)
    policy: RoomPolicy = RoomPolicy()
    # How many people are on the class's roster (teachers and pupils): it bounds how many receive
    # slots an offer may ask for. 0 when unknown; the relay then goes by who it has seen.
    roster_size: int = 0
    # For a teacher: the pupils removed from this lesson so far, so that a room rebuilt after a
    # restart still lists them for "let back in". Empty for pupils.
    removed: tuple[RemovedPupil, ...] = ()

    def __post_init__(self) -> None:
        if self.roster_size < 0:
            raise ValueError("roster_size cannot be negative.")
        if not self.display_name.strip():
            raise ValueError("A participant needs a display name from the roster.")
        if self.ends_at.tzinfo is None:
            raise ValueError("ends_at must be an aware datetime.")


class LessonAccessPolicy(Protocol):
    def admit(self, *, user_id: int, lesson_key: str) -> Admission | Refusal:
        """Decide whether a user may join a lesson now. Synchronous: it reads the database."""
        ...


@dataclass(frozen=True)
class ChatLine:
    """One chat message of a lesson, as participants see it."""

    id: int
    author_id: int
    author_name: str
    body: str
    sent_at: datetime


class LessonRecorder(Protocol):
    """What the relay records through the school's side. All times are aware UTC datetimes."""

    def presence_opened(self, *, lesson_id: int, user_id: int, at: datetime) -> None:
        """The user's peer connection reached `connected`: a presence interval starts."""
        ...

    def presence_closed(self, *, lesson_id: int, user_id: int, at: datetime) -> None:
        """The user's peer connection or socket ended: their open interval ends at `at`."""
        ...

    def presence_seen(self, *, lesson_id: int, user_ids: Sequence[int], at: datetime) -> None:
        """Heartbeat for the connected users, so that a crash loses at most one beat."""
        ...

    def grants_saved(
        self, *, lesson_id: int, user_id: int, grants: Grants, by_user_id: int
    ) -> None:
        """A teacher changed what a pupil may send; it holds across reconnects and restarts."""
        ...

    def participant_removed(self, *, lesson_id: int, user_id: int, by_user_id: int) -> None:
        """A teacher removed a pupil: refuse them (`Refusal.REMOVED`) until readmitted."""
        ...

    def participant_readmitted(self, *, lesson_id: int, user_id: int, by_user_id: int) -> None:
        """A teacher let a removed pupil back."""
        ...

    def chat_posted(self, *, lesson_id: int, user_id: int, body: str) -> ChatLine:
        """Keep a chat message with the lesson and return it as stored."""
        ...

    def chat_deleted(self, *, lesson_id: int, message_id: int, by_user_id: int) -> bool:
        """A teacher deleted a message of this lesson; False when there is no such message."""
        ...

    def chat_history(self, *, lesson_id: int, limit: int) -> list[ChatLine]:
        """The lesson's latest undeleted messages, oldest first."""
        ...

    def lesson_ended(self, *, lesson_id: int, by_user_id: int) -> None:
        """A teacher ended the lesson for everyone: it is no longer open."""
        ...


@cache
def lesson_recorder() -> LessonRecorder:
    """The configured recorder, built once per process."""
    recorder_class = import_string(settings.HOMEROOM_LESSON_RECORDER)
    recorder: LessonRecorder = recorder_class()
    return recorder


@cache
def lesson_access_policy() -> LessonAccessPolicy:
    """The configured policy, built once per process."""
    policy_class = import_string(settings.HOMEROOM_LESSON_ACCESS_POLICY)
    policy: LessonAccessPolicy = policy_class()
    return policy
