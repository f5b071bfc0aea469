"""What a live lesson leaves behind: who was connected when, what teachers allowed or removed, the
chat, and teachers' corrections to attendance.

The relay writes these rows through `classrooms.live.recorder.LessonRecords`, from its own view of
each peer connection, never from the client's word. Every row hangs off one lesson, and so off one
school: reads scope them through the lesson. Attendance itself is not stored; it is worked out from
the presence intervals by `classrooms.live.attendance`, and a teacher's correction overrides it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from classrooms.models.school import Lesson

CHAT_MESSAGE_MAX_CHARS = 1000


class LessonParticipant(models.Model):
    """A teacher's last word on one pupil in one lesson: grants, and whether they were removed.

    No row means nothing was decided yet, and the school's policy applies.
    """

    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lesson_participations"
    )
    mic_granted = models.BooleanField(_("microphone allowed"))
    camera_granted = models.BooleanField(_("camera allowed"))
    screen_granted = models.BooleanField(_("screen share allowed"))
    removed_at = models.DateTimeField(_("removed"), null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("lesson participant")
        verbose_name_plural = _("lesson participants")
        constraints = (
            models.UniqueConstraint(fields=("lesson", "user"), name="lesson_participant_unique"),
        )

    def __str__(self) -> str:
        return f"{self.user_id} in lesson {self.lesson_id}"


class PresenceInterval(models.Model):
    """One stretch of a user's peer connection to a lesson, as the relay saw it.

    `left_at` stays empty while the connection is up; `last_seen_at` moves with the relay's
    heartbeat, so that after a crash the interval can be closed at the last moment it was known.
    """

    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="presences")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lesson_presences"
    )
    joined_at = models.DateTimeField(_("joined"))
    left_at = models.DateTimeField(_("left"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("last seen"))

    class Meta:
        verbose_name = _("presence interval")
        verbose_name_plural = _("presence intervals")
        ordering = ("joined_at", "id")
        indexes = (models.Index(fields=("lesson", "user")),)
        constraints = (
            models.CheckConstraint(
                condition=models.Q(left_at__isnull=True)
                | models.Q(left_at__gte=models.F("joined_at")),
                name="presence_leaves_after_joining",
            ),
        )

    def __str__(self) -> str:
        return f"{self.user_id} in lesson {self.lesson_id} from {self.joined_at:%H:%M:%S}"


class ChatMessage(models.Model):
    """A message to the whole lesson. A teacher's deletion hides it but keeps who and when."""

    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="chat_messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lesson_chat_messages"
    )
    body = models.CharField(_("message"), max_length=CHAT_MESSAGE_MAX_CHARS)
    sent_at = models.DateTimeField(_("sent"), default=timezone.now)
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("chat message")
        verbose_name_plural = _("chat messages")
        ordering = ("sent_at", "id")
        indexes = (models.Index(fields=("lesson", "sent_at")),)

    def __str__(self) -> str:
        return f"{self.author_id} in lesson {self.lesson_id} at {self.sent_at:%H:%M:%S}"


class AttendanceStatus(models.TextChoices):
    PRESENT = "present", _("Present")
    LATE = "late", _("Late")
    LEFT_EARLY = "left_early", _("Left early")
    ABSENT = "absent", _("Absent")


class AttendanceCorrection(models.Model):
    """A teacher's correction of one pupil's attendance in one lesson, with the reason.

    Rows are only added: the latest one for a lesson and pupil is the one that counts, and the
    earlier ones stay as history next to the audit log's record.
    """

    lesson = models.ForeignKey(
        Lesson, on_delete=models.CASCADE, related_name="attendance_corrections"
    )
    pupil = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attendance_corrections"
    )
    status = models.CharField(_("status"), max_length=16, choices=AttendanceStatus.choices)
    reason = models.CharField(_("reason"), max_length=300)
    corrected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    corrected_at = models.DateTimeField(_("corrected"), default=timezone.now)

    class Meta:
        verbose_name = _("attendance correction")
        verbose_name_plural = _("attendance corrections")
        ordering = ("corrected_at", "id")
        indexes = (models.Index(fields=("lesson", "pupil", "corrected_at")),)
        constraints = (
            models.CheckConstraint(
                condition=models.Q(status__in=AttendanceStatus.values),
                name="attendance_correction_status_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(reason=""), name="attendance_correction_has_reason"
            ),
        )

    def __str__(self) -> str:
        return f"{self.pupil_id} {self.status} in lesson {self.lesson_id}"
