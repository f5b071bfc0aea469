"""Permission-checked reads for the timetable pages and the calendar feed.

Each read costs a fixed number of queries whatever the number of lessons, classes, pupils and
schools: lessons come in one query with their school, class and course, and the teachers of all
those classes in one more. Days are in the school's time zone; a week starts on Monday.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypedDict, cast

from django.db.models import Exists, F, OuterRef, QuerySet
from django_stubs_ext import WithAnnotations

from accounts.models import CalendarFeed, Membership, Role, User
from classrooms.exceptions import NotFound
from classrooms.models import Enrollment, EnrollmentRole, Lesson, School, SchoolClass
from classrooms.selectors import lessons_for_user
from classrooms.timetable.colors import CourseColors, course_colors
from classrooms.weeks import by_day, local_span

# The feed carries a month of past lessons and half a year ahead.
FEED_DAYS_BEFORE = 30
FEED_DAYS_AFTER = 180
# A feed token as `calendar_feed_ensure` makes it: URL-safe base64 of 32 random bytes or more.
FEED_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43,64}")


# --- Dates asked for in the URL -------------------------------------------------------------------


# --- What the pages show --------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """A lesson as a timetable shows it."""

    lesson: Lesson
    colors: CourseColors
    teachers: tuple[str, ...]
    # The viewer teaches this class (a user who teaches and learns sees both kinds in one week).
    teaching: bool = False
    # Show the Join button (or why it is not open yet): the lesson is today or open now, and the
    # viewer is on its class's roster.
    show_join: bool = False


@dataclass(frozen=True)
class TimetableDay:
    date: date
    is_today: bool
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class SchoolWeek:
    """One school's part of a user's week, with the roles that brought its lessons."""

    school: School
    roles: frozenset[str]
    days: tuple[TimetableDay, ...]

    @property
    def teaches(self) -> bool:
        return Role.TEACHER in self.roles

    @property
    def learns(self) -> bool:
        return Role.PUPIL in self.roles

    @property
    def lesson_count(self) -> int:
        return sum(len(day.entries) for day in self.days)


def teacher_names(class_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """The teachers of each class, by name (one query, none for no class)."""
    names: dict[int, list[str]] = defaultdict(list)
    enrollments = (
        Enrollment.objects.teachers()
        .filter(school_class_id__in=set(class_ids))
        .select_related("user")
        .order_by("user__family_name", "user__given_name", "user__email")
    )
    for enrollment in enrollments:
        names[enrollment.school_class_id].append(enrollment.user.display_name)
    return {class_id: tuple(people) for class_id, people in names.items()}


def _colors(lesson: Lesson) -> CourseColors:
    course = lesson.school_class.course
    return course_colors(course_id=course.pk, color=course.color)


def _days(
    entries: Iterable[Entry], *, school: School, monday: date, today: date
) -> tuple[TimetableDay, ...]:
    """A week's entries by the day they start on in the school's zone (see `weeks.by_day`)."""
    return tuple(
        TimetableDay(date=day, is_today=day == today, entries=tuple(day_entries))
        for day, day_entries in by_day(
            entries, starts_at=lambda entry: entry.lesson.starts_at, school=school, monday=monday
        )
    )


def _joinable_today(lesson: Lesson, *, today: date, now: datetime) -> bool:
    return lesson.starts_at.astimezone(lesson.school.tzinfo).date() == today or lesson.is_joinable(
        now
    )


class _RosterLesson(TypedDict):
    roster_role: str


@dataclass(frozen=True)
class SchoolRoles:
    school: School
    roles: frozenset[str]

    @property
    def has_lessons(self) -> bool:
        """Does this school put lessons on the user's own week (as pupil or teacher)?"""
        return bool(self.roles & {Role.TEACHER, Role.PUPIL})


def user_schools(*, user: User) -> list[SchoolRoles]:
    """The user's schools by name, each with the roles the user holds there (one query)."""
    if not user.is_active:
        return []
    roles: dict[int, set[str]] = defaultdict(set)
    schools: dict[int, School] = {}
    for membership in (
        Membership.objects.active()
        .filter(user=user)
        .select_related("school")
        .order_by("school__name", "school_id")
    ):
        roles[membership.school_id].add(membership.role)
        schools[membership.school_id] = membership.school
    return [
        SchoolRoles(school=school, roles=frozenset(roles[school_id]))
        for school_id, school in schools.items()
    ]


def user_week(
    *, user: User, schools: Iterable[SchoolRoles], monday: date, now: datetime
) -> list[SchoolWeek]:
    """The lessons a user learns or teaches in the week starting `monday`, school by school
    (two queries: the lessons, and their classes' teachers).

    Only schools where the user is a pupil or a teacher appear; a school admin or a guardian has
    pages of their own (the day view, the child's week).
    """
    by_id = {item.school.pk: item for item in schools if item.has_lessons}
    if not by_id:
        return []
    # One query for every school: from the earliest Monday midnight to the latest Sunday
    # midnight among the schools' zones, then each lesson goes to its own school's week.
    spans = [local_span(school=item.school, first=monday, days=7) for item in by_id.values()]
    lessons = cast(
        "QuerySet[WithAnnotations[Lesson, _RosterLesson]]",
        lessons_for_user(user)
        .filter(school_id__in=by_id, school_class__enrollments__user=user)
        .overlapping(min(start for start, _ in spans), max(end for _, end in spans))
        .for_display()
        .annotate(roster_role=F("school_class__enrollments__role"))
        .order_by("starts_at", "school_class__name"),
    )
    rows = list(lessons)
    teachers = teacher_names(lesson.school_class_id for lesson in rows)
    by_school: dict[int, list[Entry]] = defaultdict(list)
    for lesson in rows:
        today = now.astimezone(lesson.school.tzinfo).date()
        by_school[lesson.school_id].append(
            Entry(
                lesson=lesson,
                colors=_colors(lesson),
                teachers=teachers.get(lesson.school_class_id, ()),
                teaching=lesson.roster_role == EnrollmentRole.TEACHER,
                show_join=_joinable_today(lesson, today=today, now=now),
            )
        )
    return [
        SchoolWeek(
            school=item.school,
            roles=item.roles,
            days=_days(
                by_school[school_id],
                school=item.school,
                monday=monday,
                today=now.astimezone(item.school.tzinfo).date(),
            ),
        )
        for school_id, item in by_id.items()
    ]


@dataclass(frozen=True)
class ClassWeek:
    teachers: tuple[str, ...]
    days: tuple[TimetableDay, ...]


def class_week(
    *, school_class: SchoolClass, monday: date, now: datetime, on_roster: bool
) -> ClassWeek:
    """A class's teachers and its lessons in the week starting `monday`, by day (two queries).
    Join shows only to the people on the class's roster: a school admin reads the class, they do
    not join it."""
    school = school_class.school
    start, end = local_span(school=school, first=monday, days=7)
    lessons = list(
        Lesson.objects.filter(school_class=school_class)
        .overlapping(start, end)
        .for_display()
        .order_by("starts_at")
    )
    teachers = teacher_names([school_class.pk]).get(school_class.pk, ())
    today = now.astimezone(school.tzinfo).date()
    entries = [
        Entry(
            lesson=lesson,
            colors=_colors(lesson),
            teachers=teachers,
            show_join=on_roster and _joinable_today(lesson, today=today, now=now),
        )
        for lesson in lessons
    ]
    return ClassWeek(
        teachers=teachers, days=_days(entries, school=school, monday=monday, today=today)
    )


def school_day(*, school: School, day: date) -> list[Entry]:
    """Every lesson of a school that starts on `day` in its zone, in time order, with each
    class's teachers (two queries)."""
    start, end = local_span(school=school, first=day, days=1)
    lessons = list(
        Lesson.objects.filter(school=school, starts_at__gte=start, starts_at__lt=end)
        .for_display()
        .order_by("starts_at", "school_class__name")
    )
    teachers = teacher_names(lesson.school_class_id for lesson in lessons)
    return [
        Entry(
            lesson=lesson,
            colors=_colors(lesson),
            teachers=teachers.get(lesson.school_class_id, ()),
        )
        for lesson in lessons
    ]


# --- The calendar feed ----------------------------------------------------------------------------


def access_calendar_feed(*, token: str) -> CalendarFeed:
    """The feed a token opens, with its user; missing, renewed-away, or of a user who is
    deactivated or belongs to no school any more: all alike (one query)."""
    if not FEED_TOKEN_RE.fullmatch(token):
        raise NotFound
    try:
        return (
            CalendarFeed.objects.select_related("user")
            .filter(user__is_active=True)
            .filter(Exists(Membership.objects.active().filter(user=OuterRef("user"))))
            .get(token=token)
        )
    except CalendarFeed.DoesNotExist:
        raise NotFound from None


@dataclass(frozen=True)
class FeedLesson:
    lesson: Lesson
    teachers: tuple[str, ...]


def feed_lessons(*, user: User, now: datetime) -> list[FeedLesson]:
    """The lessons a user learns or teaches, from a month ago to half a year ahead, cancelled
    ones included so that calendars drop them (two queries)."""
    lessons = list(
        lessons_for_user(user)
        .filter(school_class__enrollments__user=user)
        .overlapping(now - timedelta(days=FEED_DAYS_BEFORE), now + timedelta(days=FEED_DAYS_AFTER))
        .for_display()
        .order_by("starts_at")
    )
    teachers = teacher_names(lesson.school_class_id for lesson in lessons)
    return [
        FeedLesson(lesson=lesson, teachers=teachers.get(lesson.school_class_id, ()))
        for lesson in lessons
    ]
