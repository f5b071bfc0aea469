"""The school's domain: the school and its timetable (`school`), the audit log (`audit`), roster
imports (`roster`), and what live lessons leave behind (`live`)."""

from classrooms.models.audit import AuditAction, AuditEvent, AuditLogAppendOnlyError
from classrooms.models.live import (
    CHAT_MESSAGE_MAX_CHARS,
    AttendanceCorrection,
    AttendanceStatus,
    ChatMessage,
    LessonParticipant,
    PresenceInterval,
)
from classrooms.models.notifications import Notification, NotificationKind
from classrooms.models.roster import RosterImport, RosterImportState
from classrooms.models.scheduling import WEEKDAYS, LessonSeries
from classrooms.models.school import (
    LESSON_KEY_RE,
    Course,
    Enrollment,
    EnrollmentRole,
    Lesson,
    LessonState,
    School,
    SchoolClass,
    Term,
    is_lesson_key,
    new_lesson_key,
    validate_time_zone,
)

__all__ = [
    "CHAT_MESSAGE_MAX_CHARS",
    "LESSON_KEY_RE",
    "WEEKDAYS",
    "AttendanceCorrection",
    "AttendanceStatus",
    "AuditAction",
    "AuditEvent",
    "AuditLogAppendOnlyError",
    "ChatMessage",
    "Course",
    "Enrollment",
    "EnrollmentRole",
    "Lesson",
    "LessonParticipant",
    "LessonSeries",
    "LessonState",
    "Notification",
    "NotificationKind",
    "PresenceInterval",
    "RosterImport",
    "RosterImportState",
    "School",
    "SchoolClass",
    "Term",
    "is_lesson_key",
    "new_lesson_key",
    "validate_time_zone",
]
