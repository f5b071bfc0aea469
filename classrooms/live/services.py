"""Writes about live lessons: presence, teachers' grants and removals, chat, the end of a lesson,
and attendance corrections.

The relay reaches the first ones through `classrooms.live.recorder.LessonRecords`, with ids it got
from the access policy at connect. Those ids are trusted to be ints, not to agree with each other:
each service checks that the people belong to the lesson's roster (and, for moderation, that the
actor is one of its teachers and the target one of its pupils) and raises `LessonRecordError`
otherwise, loudly, because a mismatch means a bug in the relay, not a user's mistake. Each service
is one short transaction; the ones a school must be able to account for (removals, readmissions,
deleted chat, the end of a lesson, corrections) append to the audit log in that transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from classrooms.audit import audit_record
from classrooms.exceptions import NotFound
from classrooms.live import selectors
from classrooms.models import (
    CHAT_MESSAGE_MAX_CHARS,
    AttendanceCorrection,
    AttendanceStatus,
    AuditAction,
    ChatMessage,
    Enrollment,
    EnrollmentRole,
    Lesson,
    LessonParticipant,
    LessonState,
    PresenceInterval,
)

CORRECTION_REASON_MAX_CHARS = 300


class LessonRecordError(ValueError):
    """The relay asked to record something that does not hold together (a user who is not on the
    lesson's roster, a pupil acting as a teacher, an empty message)."""


def _lesson(lesson_id: int, *, for_update: bool = False) -> Lesson:
    lessons = Lesson.objects.select_related("school")
    if for_update:
        lessons = lessons.select_for_update(of=("self",))
    try:
        return lessons.get(pk=lesson_id)
    except Lesson.DoesNotExist:
        raise LessonRecordError(f"No lesson {lesson_id}.") from None


def _roster_role(lesson: Lesson, user_id: int) -> str:
    role = (
        Enrollment.objects.filter(
            school_class_id=lesson.school_class_id, school_id=lesson.school_id, user_id=user_id
        )
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        raise LessonRecordError(f"User {user_id} is not on the roster of lesson {lesson.pk}.")
    return role


def _require_teacher(lesson: Lesson, user_id: int) -> None:
    if _roster_role(lesson, user_id) != EnrollmentRole.TEACHER:
        raise LessonRecordError(f"User {user_id} does not teach lesson {lesson.pk}.")


def _require_pupil(lesson: Lesson, user_id: int) -> None:
    if _roster_role(lesson, user_id) != EnrollmentRole.PUPIL:
        raise LessonRecordError(f"User {user_id} is not a pupil of lesson {lesson.pk}.")


def _user_label(user_id: int) -> str:
    user = User.objects.filter(pk=user_id).first()
    return user.display_name if user is not None else str(user_id)


# --- Presence -------------------------------------------------------------------------------------


@transaction.atomic
def presence_open(*, lesson_id: int, user_id: int, at: datetime) -> PresenceInterval:
    """Start a presence interval. An interval of this user in this lesson still open was left by
    a crash or a restart (nobody closed it): it ends at the last moment the relay saw the user, so
    what was recorded before is kept and nothing is counted that was not seen."""
    lesson = _lesson(lesson_id)
    _roster_role(lesson, user_id)
    for stale in PresenceInterval.objects.select_for_update().filter(
        lesson=lesson, user_id=user_id, left_at__isnull=True
    ):
        stale.left_at = max(stale.last_seen_at, stale.joined_at)
        stale.save(update_fields=["left_at"])
    return PresenceInterval.objects.create(
        lesson=lesson, user_id=user_id, joined_at=at, last_seen_at=at
    )


@transaction.atomic
def presence_close(*, lesson_id: int, user_id: int, at: datetime) -> int:
    """End the user's open interval at `at`. The relay may report one end twice (the peer
    connection fails, then the socket closes): the second finds nothing open and changes
    nothing. Returns the number of intervals closed."""
    closed = 0
    for interval in PresenceInterval.objects.select_for_update().filter(
        lesson_id=lesson_id, user_id=user_id, left_at__isnull=True
    ):
        interval.left_at = max(at, interval.joined_at)
        interval.last_seen_at = max(interval.last_seen_at, interval.left_at)
        interval.save(update_fields=["left_at", "last_seen_at"])
        closed += 1
    return closed


def presence_heartbeat(*, lesson_id: int, user_ids: Sequence[int], at: datetime) -> int:
    """Move the open intervals of the connected users to `at`, in one UPDATE. Only intervals
    `presence_open` created (and checked) are touched, so there is nothing else to verify."""
    return PresenceInterval.objects.filter(
        lesson_id=lesson_id, user_id__in=list(user_ids), left_at__isnull=True
    ).update(last_seen_at=at)


# --- Moderation -----------------------------------------------------------------------------------


@transaction.atomic
def participant_grants_save(
    *, lesson_id: int, user_id: int, mic: bool, camera: bool, screen: bool, by_user_id: int
) -> LessonParticipant:
    """Keep what a teacher lets a pupil send, so that it holds across reconnects and restarts."""
    lesson = _lesson(lesson_id)
    _require_teacher(lesson, by_user_id)
    _require_pupil(lesson, user_id)
    participant, _created = LessonParticipant.objects.update_or_create(
        lesson=lesson,
        user_id=user_id,
        defaults={"mic_granted": mic, "camera_granted": camera, "screen_granted": screen},
    )
    return participant


def _participant_for_update(lesson: Lesson, user_id: int) -> LessonParticipant:
    """The pupil's row, locked; made from the school's starting policy when there is none."""
    school = lesson.school
    participant, _created = LessonParticipant.objects.select_for_update().get_or_create(
        lesson=lesson,
        user_id=user_id,
        defaults={
            "mic_granted": not school.pupils_start_muted,
            "camera_granted": not school.pupils_start_camera_off,
            "screen_granted": False,
        },
    )
    return participant


@transaction.atomic
def participant_remove(*, lesson_id: int, user_id: int, by_user_id: int) -> LessonParticipant:
    """A teacher removed a pupil: the access policy refuses them until a teacher readmits them."""
    lesson = _lesson(lesson_id)
    _require_teacher(lesson, by_user_id)
    _require_pupil(lesson, user_id)
    participant = _participant_for_update(lesson, user_id)
    if participant.removed_at is None:
        participant.removed_at = timezone.now()
        participant.removed_by_id = by_user_id
        participant.save(update_fields=["removed_at", "removed_by"])
        _audit_participant(lesson, user_id, by_user_id, AuditAction.PARTICIPANT_REMOVED)
    return participant


@transaction.atomic
def participant_readmit(*, lesson_id: int, user_id: int, by_user_id: int) -> LessonParticipant:
    """A teacher let a removed pupil back into the lesson."""
    lesson = _lesson(lesson_id)
    _require_teacher(lesson, by_user_id)
    _require_pupil(lesson, user_id)
    participant = _participant_for_update(lesson, user_id)
    if participant.removed_at is not None:
        participant.removed_at = None
        participant.removed_by = None
        participant.save(update_fields=["removed_at", "removed_by"])
        _audit_participant(lesson, user_id, by_user_id, AuditAction.PARTICIPANT_READMITTED)
    return participant


def _audit_participant(lesson: Lesson, user_id: int, by_user_id: int, action: AuditAction) -> None:
    audit_record(
        school_id=lesson.school_id,
        actor_id=by_user_id,
        action=action,
        target_type="lesson",
        target_id=lesson.pk,
        target_label=f"{_user_label(user_id)} · {lesson.title}",
        details={"user_id": user_id, "lesson_key": lesson.key},
    )


# --- Chat -----------------------------------------------------------------------------------------


@transaction.atomic
def chat_message_post(*, lesson_id: int, user_id: int, body: str) -> ChatMessage:
    """Keep a message with its lesson. The relay has checked its size; an empty or oversized one
    here is a bug upstream."""
    if not body.strip() or len(body) > CHAT_MESSAGE_MAX_CHARS:
        raise LessonRecordError("A chat message has 1 to 1000 characters.")
    lesson = _lesson(lesson_id)
    _roster_role(lesson, user_id)
    message = ChatMessage.objects.create(lesson=lesson, author_id=user_id, body=body)
    return ChatMessage.objects.select_related("author").get(pk=message.pk)


@transaction.atomic
def chat_message_delete(*, lesson_id: int, message_id: int, by_user_id: int) -> bool:
    """A teacher hides a message of their lesson. False when the lesson has no such message (or
    it is already deleted): a message id is the one thing here a client chose."""
    lesson = _lesson(lesson_id)
    _require_teacher(lesson, by_user_id)
    message = (
        ChatMessage.objects.select_for_update()
        .filter(lesson=lesson, pk=message_id, deleted_at__isnull=True)
        .first()
    )
    if message is None:
        return False
    message.deleted_at = timezone.now()
    message.deleted_by_id = by_user_id
    message.save(update_fields=["deleted_at", "deleted_by"])
    audit_record(
        school_id=lesson.school_id,
        actor_id=by_user_id,
        action=AuditAction.CHAT_DELETED,
        target_type="chat_message",
        target_id=message.pk,
        target_label=lesson.title,
        details={"lesson_key": lesson.key, "author_id": message.author_id, "body": message.body},
    )
    return True


# --- The end of a lesson --------------------------------------------------------------------------


@transaction.atomic
def lesson_end(*, lesson_id: int, by_user_id: int) -> Lesson:
    """A teacher ended the lesson for everyone: it is no longer open, calendars pick up the change
    (`sequence`), and the audit log keeps when, which is the end attendance measures against."""
    lesson = _lesson(lesson_id, for_update=True)
    _require_teacher(lesson, by_user_id)
    if lesson.state in (LessonState.ENDED, LessonState.CANCELLED):
        return lesson
    lesson.state = LessonState.ENDED
    lesson.sequence += 1
    lesson.save(update_fields=["state", "sequence", "updated_at"])
    audit_record(
        school_id=lesson.school_id,
        actor_id=by_user_id,
        action=AuditAction.LESSON_ENDED,
        target_type="lesson",
        target_id=lesson.pk,
        target_label=lesson.title,
        details={"lesson_key": lesson.key},
    )
    return lesson


# --- Attendance corrections -----------------------------------------------------------------------


@transaction.atomic
def attendance_correct(
    *, actor: User, lesson: Lesson, pupil_id: int, status: str, reason: str, now: datetime
) -> AttendanceCorrection:
    """A teacher of the class (or a school admin) sets a pupil's attendance, with a reason.

    The latest correction wins; the audit log keeps the status before and after. A pupil who is
    not on the class's roster is `NotFound`; a status that is not one or a blank reason is a
    `ValidationError` keyed by the parameter.
    """
    if not selectors.lessons_for_attendance(actor).filter(pk=lesson.pk).exists():
        raise NotFound
    pupil = selectors.roster_pupil(lesson=lesson, pupil_id=pupil_id)
    if status not in AttendanceStatus.values:
        raise ValidationError({"status": _("Choose a status.")})
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the status is corrected.")})
    if len(reason) > CORRECTION_REASON_MAX_CHARS:
        raise ValidationError({"reason": _("Keep the reason under 300 characters.")})
    before = selectors.pupil_attendance(lesson=lesson, pupil=pupil, now=now)
    correction = AttendanceCorrection.objects.create(
        lesson=lesson,
        pupil=pupil,
        status=status,
        reason=reason,
        corrected_by=actor,
        corrected_at=now,
    )
    audit_record(
        school_id=lesson.school_id,
        actor_id=actor.pk,
        action=AuditAction.ATTENDANCE_CORRECTED,
        target_type="lesson",
        target_id=lesson.pk,
        target_label=f"{pupil.display_name} · {lesson.title}",
        details={
            "pupil_id": pupil.pk,
            "lesson_key": lesson.key,
            "old_status": str(before.status),
            "new_status": status,
            "reason": reason,
        },
    )
    return correction
