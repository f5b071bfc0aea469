"""The API's scoped reads, composed from the app's selectors (`classrooms.selectors`).

Nothing here widens what `classes_for_user`, `lessons_for_user` and `schools_for_user` grant; it
only narrows them: a class's roster to its teachers and the school's admins, a pupil's enrollments
to their own, the timetable to the classes a user is on.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db.models import F, Q, QuerySet

from accounts.models import Membership, Role, User
from classrooms.models import (
    Course,
    Enrollment,
    EnrollmentRole,
    LessonSeries,
    Term,
)
from classrooms.querysets import LessonQuerySet
from classrooms.selectors import classes_for_user, lessons_for_user, schools_for_user


def terms_for_user(user: User) -> QuerySet[Term]:
    """Terms of every school the user belongs to, in any role (the school's calendar is no
    secret to its guardians)."""
    return Term.objects.filter(school__in=schools_for_user(user).values("id"))


def courses_for_user(user: User) -> QuerySet[Course]:
    """Courses of every school the user belongs to, in any role."""
    return Course.objects.filter(school__in=schools_for_user(user).values("id"))


def enrollments_for_user(user: User) -> QuerySet[Enrollment]:
    """Whole rosters of the classes a user teaches or whose school they run; otherwise only the
    user's own enrollments, in the classes `classes_for_user` lets them open.

    A pupil does not read classmates' rows: a roster names children, and a pupil meets their
    classmates in the lesson anyway, under the names the roster gives.
    """
    classes = classes_for_user(user)
    admin_of = Membership.objects.active().filter(user=user, role=Role.ADMIN).values("school_id")
    teaches = Enrollment.objects.filter(user=user, role=EnrollmentRole.TEACHER).values(
        "school_class_id"
    )
    whole_roster = classes.filter(Q(school_id__in=admin_of) | Q(id__in=teaches)).values("id")
    return Enrollment.objects.filter(
        Q(school_class_id__in=whole_roster) | Q(user=user, school_class_id__in=classes.values("id"))
    )


def series_for_user(user: User) -> QuerySet[LessonSeries]:
    """Lesson series of the classes a user may open."""
    return LessonSeries.objects.filter(school_class__in=classes_for_user(user).values("id"))


def timetable_for_user(*, user: User, monday: date) -> LessonQuerySet:
    """The user's lessons, as pupil or teacher of the class, in the week starting `monday`.

    Each school's week runs from its own Monday midnight, so a lesson late on Sunday evening in
    one zone is not pulled into the next week. Each row carries `roster_role` (two queries: the
    user's schools, then the lessons).
    """
    windows = Q()
    for school in schools_for_user(user).only("id", "time_zone"):
        start = datetime.combine(monday, time.min, tzinfo=school.tzinfo)
        end = datetime.combine(monday + timedelta(days=7), time.min, tzinfo=school.tzinfo)
        windows |= Q(school_id=school.pk, starts_at__lt=end, ends_at__gt=start)
    if not windows:
        return lessons_for_user(user).none()
    return (
        lessons_for_user(user)
        .filter(windows)
        .filter(school_class__enrollments__user=user)
        .annotate(roster_role=F("school_class__enrollments__role"))
        .for_display()
        .order_by("starts_at", "id")
    )
