"""Permission-checked reads of the school's domain.

Every `access_*` selector raises `NotFound` alike whether the row is missing or outside the user's
school or roster, so nobody can tell a foreign row from a missing one. The list selectors return
QuerySets scoped the same way, and each costs a fixed number of queries whatever the number of
lessons, classes and pupils (the home pages assert it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypedDict, cast

from django.db.models import Count, F, Prefetch, Q, QuerySet
from django_stubs_ext import WithAnnotations

from accounts.models import Guardianship, Membership, Role, User
from classrooms.exceptions import NotFound
from classrooms.models import (
    Enrollment,
    EnrollmentRole,
    Lesson,
    LessonState,
    School,
    SchoolClass,
    is_lesson_key,
)
from classrooms.querysets import LessonQuerySet, SchoolClassQuerySet
from classrooms.weeks import by_day, local_span, monday_of


def roles_by_school(user: User) -> dict[int, frozenset[str]]:
    """The roles a user holds in each of their schools (one query)."""
    if not user.is_authenticated or not user.is_active:
        return {}
    roles: dict[int, set[str]] = defaultdict(set)
    for school_id, role in (
        Membership.objects.active().filter(user=user).values_list("school_id", "role")
    ):
        roles[school_id].add(role)
    return {school_id: frozenset(held) for school_id, held in roles.items()}


def schools_for_user(user: User) -> QuerySet[School]:
    if not user.is_authenticated or not user.is_active:
        return School.objects.none()
    return School.objects.filter(
        id__in=Membership.objects.active().filter(user=user).values("school_id")
    ).order_by("name")


def classes_for_user(user: User) -> SchoolClassQuerySet:
    """Classes a user may open: every class of a school they run, or a class they are on.

    Being on a roster counts only while the user is also a member of that class's school as a
    teacher or pupil: an enrollment left behind after someone leaves a school grants nothing.
    """
    if not user.is_authenticated or not user.is_active:
        return SchoolClass.objects.none()
    memberships = Membership.objects.active().filter(user=user)
    admin_of = memberships.filter(role=Role.ADMIN).values("school_id")
    member_of = memberships.filter(role__in=(Role.TEACHER, Role.PUPIL)).values("school_id")
    enrolled_in = Enrollment.objects.filter(user=user).values("school_class_id")
    return SchoolClass.objects.filter(
        Q(school_id__in=admin_of) | Q(school_id__in=member_of, id__in=enrolled_in)
    )


def lessons_for_user(user: User) -> LessonQuerySet:
    """Lessons of the classes a user may open (see `classes_for_user`)."""
    return Lesson.objects.filter(school_class__in=classes_for_user(user).values("id"))


def access_school_for_admin(*, user: User, school_id: int) -> School:
    """A school the user runs, with an active admin membership."""
    if not user.is_authenticated or not user.is_active:
        raise NotFound
    admin_of = Membership.objects.active().filter(user=user, role=Role.ADMIN)
    try:
        return School.objects.get(id=school_id, id__in=admin_of.values("school_id"))
    except School.DoesNotExist:
        raise NotFound from None


def access_class_for_user(*, user: User, class_id: int) -> SchoolClass:
    try:
        return classes_for_user(user).select_related("school", "course", "term").get(id=class_id)
    except SchoolClass.DoesNotExist:
        raise NotFound from None


def access_lesson_for_user(*, user: User, lesson_key: str) -> Lesson:
    if not is_lesson_key(lesson_key):
        raise NotFound
    try:
        return lessons_for_user(user).for_display().get(key=lesson_key)
    except Lesson.DoesNotExist:
        raise NotFound from None


def class_roster(*, school_class: SchoolClass) -> QuerySet[Enrollment]:
    """Teachers first, then pupils, each by name (one query)."""
    return (
        Enrollment.objects.filter(school_class=school_class)
        .select_related("user")
        .order_by("-role", "user__family_name", "user__given_name")
    )


def roster_role(*, user: User, school_class: SchoolClass) -> str | None:
    """The user's role on the class's roster, teacher or pupil, or None (one query)."""
    return (
        Enrollment.objects.filter(user=user, school_class=school_class)
        .values_list("role", flat=True)
        .first()
    )


def class_upcoming_lessons(
    *, school_class: SchoolClass, now: datetime, limit: int = 20
) -> list[Lesson]:
    return list(
        Lesson.objects.filter(school_class=school_class)
        .upcoming(now)
        .for_display()
        .order_by("starts_at")[:limit]
    )


# --- Home pages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    """One day of a timetable, in the school's time zone."""

    date: date
    is_today: bool
    lessons: tuple[Lesson, ...]


def week_bounds(*, school: School, now: datetime) -> tuple[date, datetime, datetime]:
    """Monday of the school's current week and that week's start and end as aware datetimes."""
    monday = monday_of(now.astimezone(school.tzinfo).date())
    start, end = local_span(school=school, first=monday, days=7)
    return monday, start, end


def days_of_week(
    lessons: Iterable[Lesson], *, school: School, monday: date, today: date
) -> list[Day]:
    """Group one week's lessons by day in the school's zone (see `weeks.by_day`)."""
    return [
        Day(date=day, is_today=day == today, lessons=tuple(day_lessons))
        for day, day_lessons in by_day(
            lessons, starts_at=lambda lesson: lesson.starts_at, school=school, monday=monday
        )
    ]


def pupil_week(*, user: User, school: School, now: datetime) -> list[Day]:
    """A pupil's lessons this week in one school, by day (one query)."""
    monday, start, end = week_bounds(school=school, now=now)
    lessons = (
        lessons_for_user(user)
        .filter(
            school=school,
            school_class__enrollments__user=user,
            school_class__enrollments__role=EnrollmentRole.PUPIL,
        )
        .overlapping(start, end)
        .for_display()
        .order_by("starts_at")
    )
    today = now.astimezone(school.tzinfo).date()
    return days_of_week(lessons, school=school, monday=monday, today=today)


def teacher_classes(*, user: User, school: School) -> list[SchoolClass]:
    """The active classes a user teaches in one school, with pupil counts (one query)."""
    return list(
        classes_for_user(user)
        .filter(
            school=school,
            # A subquery, not a join: joining the teacher's own enrollment row would leave only
            # that row for the pupil count below.
            id__in=Enrollment.objects.filter(user=user, role=EnrollmentRole.TEACHER).values(
                "school_class_id"
            ),
        )
        .active()
        .select_related("course")
        .annotate(
            pupil_count=Count(
                "enrollments__id",
                filter=Q(enrollments__role=EnrollmentRole.PUPIL),
                distinct=True,
            )
        )
        .order_by("name")
    )


def teacher_next_lessons(
    *, user: User, school: School, now: datetime, limit: int = 8
) -> list[Lesson]:
    """The next lessons a user teaches, live ones first in time order (one query)."""
    return list(
        lessons_for_user(user)
        .filter(
            school=school,
            school_class__enrollments__user=user,
            school_class__enrollments__role=EnrollmentRole.TEACHER,
        )
        .upcoming(now)
        .for_display()
        .order_by("starts_at")[:limit]
    )


def school_classes(*, school: School) -> list[SchoolClass]:
    """A school's active classes with pupil counts and teachers, for its admin (two queries)."""
    return list(
        SchoolClass.objects.filter(school=school)
        .active()
        .select_related("course")
        .with_pupil_count()
        .prefetch_related(
            Prefetch(
                "enrollments",
                queryset=Enrollment.objects.teachers().select_related("user"),
                to_attr="teacher_enrollments",
            )
        )
        .order_by("name")
    )


@dataclass(frozen=True)
class SchoolOverview:
    school: School
    teachers: int
    pupils: int
    guardians: int
    admins: int
    classes: int
    lessons_this_week: int
    live_now: tuple[Lesson, ...]
    class_list: tuple[SchoolClass, ...]


def school_overview(*, school: School, now: datetime) -> SchoolOverview:
    """What a school admin reads at a glance: counts, live lessons, classes (six queries)."""
    people = dict(
        Membership.objects.active()
        .filter(school=school)
        .values_list("role")
        .annotate(n=Count("user", distinct=True))
        .values_list("role", "n")
    )
    _monday, start, end = week_bounds(school=school, now=now)
    lessons_this_week = (
        Lesson.objects.filter(school=school).not_cancelled().overlapping(start, end).count()
    )
    live_now = tuple(
        Lesson.objects.filter(school=school, state=LessonState.LIVE, ends_at__gt=now)
        .for_display()
        .order_by("starts_at")
    )
    return SchoolOverview(
        school=school,
        teachers=people.get(Role.TEACHER, 0),
        pupils=people.get(Role.PUPIL, 0),
        guardians=people.get(Role.GUARDIAN, 0),
        admins=people.get(Role.ADMIN, 0),
        classes=SchoolClass.objects.filter(school=school).active().count(),
        lessons_this_week=lessons_this_week,
        live_now=live_now,
        class_list=tuple(school_classes(school=school)),
    )


class _WardLesson(TypedDict):
    ward_id: int


@dataclass(frozen=True)
class WardToday:
    pupil: User
    lessons: tuple[Lesson, ...]


def guardian_wards_today(*, user: User, school: School, now: datetime) -> list[WardToday]:
    """A guardian's pupils in one school and each one's lessons today (two queries)."""
    wards = [
        g.pupil
        for g in Guardianship.objects.filter(school=school, guardian=user)
        .select_related("pupil")
        .order_by("pupil__given_name")
    ]
    today = now.astimezone(school.tzinfo).date()
    start, end = local_span(school=school, first=today, days=1)
    by_pupil: dict[int, list[Lesson]] = defaultdict(list)
    lessons = (
        Lesson.objects.filter(
            school=school,
            school_class__enrollments__user__in=[ward.pk for ward in wards],
            school_class__enrollments__role=EnrollmentRole.PUPIL,
        )
        .overlapping(start, end)
        .for_display()
        .annotate(ward_id=F("school_class__enrollments__user_id"))
        .order_by("starts_at")
    )
    for lesson in cast("QuerySet[WithAnnotations[Lesson, _WardLesson]]", lessons):
        by_pupil[lesson.ward_id].append(lesson)
    return [
        WardToday(
            pupil=ward,
            lessons=tuple(by_pupil[ward.pk]),
        )
        for ward in wards
    ]
