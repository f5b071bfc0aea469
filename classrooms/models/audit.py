"""The school's audit log: who changed what in the school and its lessons, and when. Append-only.

Rows are written by `classrooms.audit.audit_record` from the services that make the changes, in the
same transaction, so a change and its record stand or fall together. The model refuses updates and
deletes; on PostgreSQL a trigger refuses them too, whatever the code path.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from classrooms.models.school import School


class AuditLogAppendOnlyError(RuntimeError):
    """An audit event was about to be changed or deleted."""


class AuditAction(models.TextChoices):
    PERSON_CREATED = "person.created", _("Person created")
    PERSON_UPDATED = "person.updated", _("Person updated")
    PERSON_DEACTIVATED = "person.deactivated", _("Person deactivated")
    PERSON_REACTIVATED = "person.reactivated", _("Person reactivated")
    ROLE_ADDED = "role.added", _("Role added")
    ROLE_REMOVED = "role.removed", _("Role removed")
    GUARDIAN_LINKED = "guardian.linked", _("Guardian linked")
    GUARDIAN_UNLINKED = "guardian.unlinked", _("Guardian unlinked")
    TERM_CREATED = "term.created", _("Term created")
    TERM_UPDATED = "term.updated", _("Term updated")
    COURSE_CREATED = "course.created", _("Course created")
    COURSE_UPDATED = "course.updated", _("Course updated")
    CLASS_CREATED = "class.created", _("Class created")
    CLASS_UPDATED = "class.updated", _("Class updated")
    CLASS_ARCHIVED = "class.archived", _("Class archived")
    CLASS_RESTORED = "class.restored", _("Class restored")
    ENROLLMENT_ADDED = "enrollment.added", _("Enrolled")
    ENROLLMENT_REMOVED = "enrollment.removed", _("Unenrolled")
    LESSON_SCHEDULED = "lesson.scheduled", _("Lesson scheduled")
    LESSON_UPDATED = "lesson.updated", _("Lesson moved or renamed")
    LESSON_CANCELLED = "lesson.cancelled", _("Lesson cancelled")
    SERIES_CREATED = "series.created", _("Weekly series created")
    SERIES_UPDATED = "series.updated", _("Weekly series changed")
    SERIES_CANCELLED = "series.cancelled", _("Weekly series stopped")
    INVITATION_SENT = "invitation.sent", _("Invitation sent")
    INVITATION_ACCEPTED = "invitation.accepted", _("Invitation accepted")
    IMPORT_UPLOADED = "import.uploaded", _("Roster uploaded")
    IMPORT_APPLIED = "import.applied", _("Roster import applied")
    EXPORT_DOWNLOADED = "export.downloaded", _("Roster exported")
    PARTICIPANT_REMOVED = "participant.removed", _("Removed from a live lesson")
    PARTICIPANT_READMITTED = "participant.readmitted", _("Let back into a live lesson")
    CHAT_DELETED = "chat.deleted", _("Chat message deleted")
    LESSON_ENDED = "lesson.ended", _("Live lesson ended")
    ATTENDANCE_CORRECTED = "attendance.corrected", _("Attendance corrected")


class AuditEvent(models.Model):
    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty for the system (an operator's command line, a scheduled task)."),
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ("-at", "-id")
        indexes = (models.Index(fields=("school", "action", "at")),)

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.target_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogAppendOnlyError("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditLogAppendOnlyError("Audit events cannot be deleted.")
