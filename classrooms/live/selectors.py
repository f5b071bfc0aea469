"""Permission-checked reads of what live lessons left behind: attendance per lesson and per term,
and a lesson's chat.

Attendance is for the people who run a class: its teachers and the school's admins (the same
people who schedule it). Everyone else, pupils and guardians included, gets `NotFound` from the
`access_*` selectors, alike for a missing row and a foreign one. The attendance reads cost a fixed
number of queries whatever the number of lessons, pupils and intervals (the pages assert it); the
rules themselves are in `classrooms.live.attendance`. Attendance is worked out for the class's
roster as it is now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from accounts.models import User
from classrooms.exceptions import NotFound
from classrooms.live.attendance import (
    Attendance,
    Correction,
    Interval,
    LessonTimes,
    TermCounts,
    Thresholds,
    attendance_of,
)
from classrooms.models import (
    AttendanceCorrection,
    AttendanceStatus,
    AuditAction,
    AuditEvent,
    ChatMessage,
    Enrollment,
    EnrollmentRole,
    Lesson,
    LessonState,
    PresenceInterval,
    SchoolClass,
    Term,
    is_lesson_key,
)
from classrooms.querysets import LessonQuerySet, SchoolClassQuerySet
from classrooms.scheduling.selectors import classes_for_scheduling
from classrooms.weeks import local_span


def classes_for_attendance(user: User) -> SchoolClassQuerySet:
    """Classes whose attendance the user may read and correct: those they may schedule, since
    the people who run a class's timetable are the ones who run its register."""
    return classes_for_scheduling(user)


def lessons_for_attendance(user: User) -> LessonQuerySet:
    return Lesson.objects.filter(school_class__in=classes_for_attendance(user).values("id"))


def access_lesson_for_attendance(*, user: User, lesson_key: str) -> Lesson:
    if not is_lesson_key(lesson_key):
        raise NotFound
    try:
        return (
            lessons_for_attendance(user)
            .select_related("school", "school_class", "school_class__course")
            .get(key=lesson_key)
        )
    except Lesson.DoesNotExist:
        raise NotFound from None


def access_class_for_attendance(*, user: User, class_id: int) -> SchoolClass:
    try:
        return (
            classes_for_attendance(user).select_related("school", "term", "course").get(id=class_id)
        )
    except SchoolClass.DoesNotExist:
        raise NotFound from None


def roster_pupil(*, lesson: Lesson, pupil_id: int) -> User:
    """A pupil on the lesson's class roster."""
    enrollment = (
        Enrollment.objects.filter(
            school_class_id=lesson.school_class_id,
            school_id=lesson.school_id,
            user_id=pupil_id,
            role=EnrollmentRole.PUPIL,
        )
        .select_related("user")
        .first()
    )
    if enrollment is None:
        raise NotFound
    user: User = enrollment.user
    return user


def chat_history(*, lesson_id: int, limit: int) -> list[ChatMessage]:
    """The lesson's latest undeleted messages, oldest first (one query)."""
    latest = (
        ChatMessage.objects.filter(lesson_id=lesson_id, deleted_at__isnull=True)
        .select_related("author")
        .order_by("-sent_at", "-id")[: max(limit, 0)]
    )
    return list(reversed(latest))


# --- Attendance of lessons ------------------------------------------------------------------------


@dataclass(frozen=True)
class AttendanceRow:
    user: User
    role: str
    attendance: Attendance

    @property
    def is_pupil(self) -> bool:
        return self.role == EnrollmentRole.PUPIL


@dataclass(frozen=True)
class LessonAttendance:
    lesson: Lesson
    times: LessonTimes
    running: bool
    # Teachers first, then pupils, each by name.
    rows: tuple[AttendanceRow, ...]

    @property
    def pupils(self) -> list[AttendanceRow]:
        return [row for row in self.rows if row.is_pupil]


def _ended_at(lessons: Iterable[Lesson]) -> dict[int, datetime]:
    """When a teacher ended each lesson for everyone, from the audit log (one query)."""
    lessons = list(lessons)
    ended: dict[int, datetime] = {}
    events = AuditEvent.objects.filter(
        school_id__in={lesson.school_id for lesson in lessons},
        action=AuditAction.LESSON_ENDED,
        target_type="lesson",
        target_id__in=[str(lesson.pk) for lesson in lessons],
    ).order_by("at")
    for target_id, at in events.values_list("target_id", "at"):
        ended.setdefault(int(target_id), at)
    return ended


def _lesson_times(lesson: Lesson, ended: dict[int, datetime]) -> LessonTimes:
    ended_at = ended.get(lesson.pk)
    if ended_at is None and lesson.state == LessonState.ENDED:
        # Ended some other way than through the relay: the schedule is all we know.
        ended_at = lesson.ends_at
    return LessonTimes(starts_at=lesson.starts_at, ends_at=lesson.ends_at, ended_at=ended_at)


def _attendances(
    lessons: list[Lesson], user_ids: list[int], *, ended: dict[int, datetime], now: datetime
) -> dict[tuple[int, int], Attendance]:
    """Every (lesson, user)'s attendance, in two queries whatever the numbers."""
    if not lessons or not user_ids:
        return {}
    lesson_ids = [lesson.pk for lesson in lessons]
    intervals: dict[tuple[int, int], list[Interval]] = defaultdict(list)
    for lesson_id, user_id, joined_at, left_at, last_seen_at in PresenceInterval.objects.filter(
        lesson_id__in=lesson_ids, user_id__in=user_ids
    ).values_list("lesson_id", "user_id", "joined_at", "left_at", "last_seen_at"):
        intervals[lesson_id, user_id].append(
            Interval(joined_at=joined_at, left_at=left_at, last_seen_at=last_seen_at)
        )
    corrections: dict[tuple[int, int], Correction] = {}
    for correction in (
        AttendanceCorrection.objects.filter(lesson_id__in=lesson_ids, pupil_id__in=user_ids)
        .select_related("corrected_by")
        .order_by("corrected_at", "id")
    ):
        # The latest one wins.
        corrections[correction.lesson_id, correction.pupil_id] = Correction(
            status=AttendanceStatus(correction.status),
            reason=correction.reason,
            corrected_at=correction.corrected_at,
            corrected_by_name=(
                correction.corrected_by.display_name if correction.corrected_by else ""
            ),
        )
    result = {}
    for lesson in lessons:
        times = _lesson_times(lesson, ended)
        thresholds = Thresholds.of_school(lesson.school)
        for user_id in user_ids:
            result[lesson.pk, user_id] = attendance_of(
                intervals[lesson.pk, user_id],
                lesson=times,
                thresholds=thresholds,
                now=now,
                correction=corrections.get((lesson.pk, user_id)),
            )
    return result


def lesson_attendance(*, lesson: Lesson, now: datetime) -> LessonAttendance:
    """Everyone on the lesson's roster with their attendance (four queries)."""
    roster = list(
        Enrollment.objects.filter(
            school_class_id=lesson.school_class_id, school_id=lesson.school_id
        )
        .select_related("user")
        .order_by("-role", "user__family_name", "user__given_name", "user_id")
    )
    ended = _ended_at([lesson])
    by_user = _attendances([lesson], [e.user_id for e in roster], ended=ended, now=now)
    times = _lesson_times(lesson, ended)
    return LessonAttendance(
        lesson=lesson,
        times=times,
        running=now >= lesson.starts_at and not times.is_over(now),
        rows=tuple(
            AttendanceRow(user=e.user, role=e.role, attendance=by_user[lesson.pk, e.user_id])
            for e in roster
        ),
    )


def pupil_attendance(*, lesson: Lesson, pupil: User, now: datetime) -> Attendance:
    ended = _ended_at([lesson])
    return _attendances([lesson], [pupil.pk], ended=ended, now=now)[lesson.pk, pupil.pk]


# --- A class over a term --------------------------------------------------------------------------


def school_terms(*, school_class: SchoolClass) -> list[Term]:
    return list(Term.objects.filter(school_id=school_class.school_id).order_by("starts_on"))


def term_for_attendance(
    *, school_class: SchoolClass, terms: list[Term], term_id: int | None, today: date
) -> Term:
    """The term a `?term=` asks for among the school's; else the class's own term if today falls
    in it, else the school's term today falls in, else the class's own term. A term of another
    school is `NotFound`."""
    if term_id is not None:
        for term in terms:
            if term.pk == term_id:
                return term
        raise NotFound
    current = [term for term in terms if term.starts_on <= today <= term.ends_on]
    if not current or school_class.term in current:
        return school_class.term
    return current[0]


@dataclass(frozen=True)
class PupilTerm:
    pupil: User
    counts: TermCounts


@dataclass(frozen=True)
class ClassTermAttendance:
    term: Term
    # The lessons counted: begun, not cancelled, within the term; first one first.
    lessons: tuple[Lesson, ...]
    pupils: tuple[PupilTerm, ...]


def class_term_attendance(
    *, school_class: SchoolClass, term: Term, now: datetime
) -> ClassTermAttendance:
    """Each pupil's counts of present, late, left early and absent over the class's lessons of
    the term that have begun, cancelled ones left out (five queries, whatever the numbers)."""
    school = school_class.school
    start, end = local_span(
        school=school, first=term.starts_on, days=(term.ends_on - term.starts_on).days + 1
    )
    lessons = list(
        Lesson.objects.filter(
            school_class=school_class,
            starts_at__gte=start,
            starts_at__lt=min(end, now + timedelta(microseconds=1)),
        )
        .exclude(state=LessonState.CANCELLED)
        .select_related("school")
        .order_by("starts_at", "id")
    )
    pupils = [
        enrollment.user
        for enrollment in Enrollment.objects.filter(
            school_class=school_class, school_id=school_class.school_id, role=EnrollmentRole.PUPIL
        )
        .select_related("user")
        .order_by("user__family_name", "user__given_name", "user_id")
    ]
    by_pair = _attendances(
        lessons, [pupil.pk for pupil in pupils], ended=_ended_at(lessons), now=now
    )
    rows = []
    for pupil in pupils:
        counts = TermCounts()
        for lesson in lessons:
            counts = counts.adding(by_pair[lesson.pk, pupil.pk].status)
        rows.append(PupilTerm(pupil=pupil, counts=counts))
    return ClassTermAttendance(term=term, lessons=tuple(lessons), pupils=tuple(rows))
