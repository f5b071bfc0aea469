"""Who may schedule which class, and the reads of the scheduling pages.

A school admin schedules any class of the school they run; a teacher schedules the classes on
whose roster they are a teacher, while they are an active teacher of that school. Everyone else
gets `NotFound`, alike for a missing row and a foreign one.
"""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import Q, QuerySet

from accounts.models import Membership, Role, User
from classrooms.exceptions import NotFound
from classrooms.models import (
    Enrollment,
    EnrollmentRole,
    Lesson,
    LessonSeries,
    SchoolClass,
    is_lesson_key,
)
from classrooms.querysets import LessonQuerySet, SchoolClassQuerySet


def classes_for_scheduling(user: User) -> SchoolClassQuerySet:
    """Classes whose lessons the user may schedule, change and cancel."""
    if not user.is_authenticated or not user.is_active:
        return SchoolClass.objects.none()
    memberships = Membership.objects.active().filter(user=user)
    admin_of = memberships.filter(role=Role.ADMIN).values("school_id")
    teacher_in = memberships.filter(role=Role.TEACHER).values("school_id")
    teaches = Enrollment.objects.filter(user=user, role=EnrollmentRole.TEACHER).values(
        "school_class_id"
    )
    return SchoolClass.objects.filter(
        Q(school_id__in=admin_of) | Q(school_id__in=teacher_in, id__in=teaches)
    )


def may_schedule(*, user: User, school_class: SchoolClass) -> bool:
    return classes_for_scheduling(user).filter(pk=school_class.pk).exists()


def access_class_for_scheduling(*, user: User, class_id: int) -> SchoolClass:
    try:
        return (
            classes_for_scheduling(user).select_related("school", "term", "course").get(id=class_id)
        )
    except SchoolClass.DoesNotExist:
        raise NotFound from None


def access_lesson_for_scheduling(*, user: User, lesson_key: str) -> Lesson:
    if not is_lesson_key(lesson_key):
        raise NotFound
    try:
        return (
            Lesson.objects.filter(school_class__in=classes_for_scheduling(user).values("id"))
            .select_related("school", "school_class", "school_class__term", "series")
            .get(key=lesson_key)
        )
    except Lesson.DoesNotExist:
        raise NotFound from None


def access_series_for_scheduling(*, user: User, series_id: int) -> LessonSeries:
    try:
        return (
            LessonSeries.objects.filter(school_class__in=classes_for_scheduling(user).values("id"))
            .select_related("school", "school_class", "school_class__term")
            .get(id=series_id)
        )
    except LessonSeries.DoesNotExist:
        raise NotFound from None


def class_series(*, school_class: SchoolClass, today: date) -> QuerySet[LessonSeries]:
    """The class's series that still have days to come, first one first (one query)."""
    return LessonSeries.objects.filter(school_class=school_class, ends_on__gte=today).order_by(
        "starts_on", "start_time", "pk"
    )


def class_lessons_to_come(
    *, school_class: SchoolClass, now: datetime, limit: int = 60
) -> LessonQuerySet:
    """The class's lessons not yet over, cancelled ones included so they can be seen (one query)."""
    return (
        Lesson.objects.filter(school_class=school_class, ends_at__gt=now)
        .select_related("school", "school_class", "series")
        .order_by("starts_at", "pk")[:limit]
    )
