"""Who may join a live lesson: `classrooms`' side of the relay's access port.

A user joins a lesson only when they are an active member of its school, on its class's roster (as
teacher or pupil), and the lesson is open: not cancelled or ended, and within its join window
(from a few minutes before the start until the end). School admins who are not on the roster do
not join: they read the lesson's page instead.
"""

from __future__ import annotations

from django.utils import timezone

from accounts.models import Membership, Role, User
from classrooms.models import Enrollment, Lesson, is_lesson_key
from media_relay.ports import Admission, ParticipantRole, Refusal

_MEMBERSHIP_FOR_ENROLLMENT = {
    ParticipantRole.TEACHER: Role.TEACHER,
    ParticipantRole.PUPIL: Role.PUPIL,
}


class RosterLessonAccess:
    """Admits users on the lesson's roster while the lesson is open."""

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
        lesson = Lesson.objects.get(key=lesson_key)
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
        )
