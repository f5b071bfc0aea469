"""The school's domain: the school and its timetable (`school`), the audit log (`audit`), and
roster imports (`roster`)."""

from classrooms.models.audit import AuditAction, AuditEvent, AuditLogAppendOnlyError
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
    "LESSON_KEY_RE",
    "WEEKDAYS",
    "AuditAction",
    "AuditEvent",
    "AuditLogAppendOnlyError",
    "Course",
    "Enrollment",
    "EnrollmentRole",
    "Lesson",
    "LessonSeries",
    "LessonState",
    "Notification",
    "NotificationKind",
    "RosterImport",
    "RosterImportState",
    "School",
    "SchoolClass",
    "Term",
    "is_lesson_key",
    "new_lesson_key",
    "validate_time_zone",
]
