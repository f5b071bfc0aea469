"""Who may join a live lesson: `classrooms`' side of the relay's access port.

A user joins a lesson only when they are an active member of its school, on its class's roster (as
teacher or pupil), and the lesson is open: not cancelled or ended, and within its join window
(from a few minutes before the start until the end). A pupil a teacher removed from the lesson
stays out until a teacher readmits them. School admins who are not on the roster do not join: they
read the lesson's page instead.

An admission carries what the relay applies from the start: the pupil's grants (what a teacher
last set in this lesson, which survives reconnects and restarts, or else the school's starting
policy; a teacher holds every grant), the school's room policy, and the size of the class's roster
(which bounds how many receive slots an offer may ask for).
"""

from __future__ import annotations

from typing import TypedDict, cast

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_stubs_ext import WithAnnotations

from accounts.models import Membership, Role, User
from classrooms.models import Enrollment, Lesson, LessonParticipant, School, is_lesson_key
from media_relay.ports import (
    Admission,
    Grants,
    ParticipantRole,
    Refusal,
    RemovedPupil,
    RoomPolicy,
)

_MEMBERSHIP_FOR_ENROLLMENT = {
    ParticipantRole.TEACHER: Role.TEACHER,
    ParticipantRole.PUPIL: Role.PUPIL,
}

_TEACHER_GRANTS = Grants(mic=True, camera=True, screen=True)

# Everyone enrolled in the lesson's class, teachers included: the relay bounds offers by it.
_ROSTER_SIZE = Coalesce(
    Subquery(
        Enrollment.objects.filter(school_class=OuterRef("school_class"))
        .order_by()
        .values("school_class")
        .annotate(count=Count("pk"))
        .values("count")
    ),
    0,
)


class _RosterSize(TypedDict):
    roster_size: int


def _pupil_grants(school: School, participant: LessonParticipant | None) -> Grants:
    if participant is not None:
        return Grants(
            mic=participant.mic_granted,
            camera=participant.camera_granted,
            screen=participant.screen_granted,
        )
    return Grants(
        mic=not school.pupils_start_muted,
        camera=not school.pupils_start_camera_off,
        screen=False,
    )


class RosterLessonAccess:
    """Admits users on the lesson's roster while the lesson is open (four queries)."""

    def admit(self, *, user_id: int, lesson_key: str) -> Admission | Refusal:
        if not is_lesson_key(lesson_key):
            return Refusal.NOT_ON_ROSTER
        enrollment = (
            Enrollment.objects.filter(
                user_id=user_id,
                user__is_active=True,
                school_class__lessons__key=lesson_key,
            )
            .select_related("user")
            .first()
        )
        if enrollment is None:
            return Refusal.NOT_ON_ROSTER
        role = ParticipantRole(enrollment.role)
        # The roster's size rides along with the lesson (a subquery, not one more query).
        lesson = cast(
            "QuerySet[WithAnnotations[Lesson, _RosterSize]]",
            Lesson.objects.select_related("school").annotate(roster_size=_ROSTER_SIZE),
        ).get(key=lesson_key)
        if lesson.school_id != enrollment.school_id:
            return Refusal.NOT_ON_ROSTER
        if (
            not Membership.objects.active()
            .filter(
                user_id=user_id, school_id=lesson.school_id, role=_MEMBERSHIP_FOR_ENROLLMENT[role]
            )
            .exists()
        ):
            return Refusal.NOT_ON_ROSTER
        if not lesson.is_joinable(timezone.now()):
            return Refusal.NOT_OPEN
        # One query for the user's own row and, for a teacher, everyone removed from the lesson.
        rows = LessonParticipant.objects.filter(lesson=lesson).select_related("user")
        if role is ParticipantRole.TEACHER:
            rows = rows.filter(Q(user_id=user_id) | Q(removed_at__isnull=False))
        else:
            rows = rows.filter(user_id=user_id)
        by_user = {row.user_id: row for row in rows}
        participant = by_user.get(user_id)
        if participant is not None and participant.removed_at is not None:
            return Refusal.REMOVED
        school = lesson.school
        user: User = enrollment.user
        return Admission(
            lesson_key=lesson.key,
            lesson_id=lesson.pk,
            school_id=lesson.school_id,
            user_id=user.pk,
            role=role,
            display_name=user.display_name,
            lesson_title=lesson.title,
            ends_at=lesson.ends_at,
            grants=(
                _TEACHER_GRANTS
                if role is ParticipantRole.TEACHER
                else _pupil_grants(school, participant)
            ),
            policy=RoomPolicy(
                lobby_until_teacher=school.lobby_until_teacher,
                pause_pupils_without_teacher=school.pause_pupils_without_teacher,
            ),
            roster_size=lesson.roster_size,
            removed=tuple(
                RemovedPupil(user_id=row.user_id, display_name=row.user.display_name)
                for row in sorted(by_user.values(), key=lambda row: row.user.display_name)
                if row.removed_at is not None
            ),
        )
