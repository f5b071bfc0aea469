"""In-app notifications (the bell) and their emails: reminders before a lesson, notices when a
lesson is cancelled or moved.

A notification is written once per person and event: `dedupe_key` (for a reminder
`reminder:<lesson id>`, for a notice `<kind>:<lesson id>:<lesson sequence>`) is unique per user, so
two workers scanning at once, or a worker that died mid-run and is run again, cannot notify twice.
The email goes out after the row is committed and is marked `emailed_at`; a later scan sends what
a dead worker left unsent.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from classrooms.models.school import Lesson, School


class NotificationKind(models.TextChoices):
    REMINDER = "reminder", _("Lesson starting soon")
    CANCELLED = "cancelled", _("Lesson cancelled")
    MOVED = "moved", _("Lesson moved")


class Notification(models.Model):
    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    lesson = models.ForeignKey(
        Lesson, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    dedupe_key = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ("-created_at", "-id")
        constraints = (
            models.UniqueConstraint(fields=("user", "dedupe_key"), name="notification_once"),
        )
        indexes = (
            models.Index(fields=("user", "read_at")),
            models.Index(
                fields=("created_at",),
                condition=models.Q(emailed_at__isnull=True),
                name="notification_email_due",
            ),
        )

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}: {self.title}"
