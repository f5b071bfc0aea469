"""Clash checks: a class is in one lesson at a time, and so is each of its teachers.

Two requests that check and then insert could both pass if nothing serialized them, so the check
runs under a lock: `lock_timetables` locks (SELECT ... FOR UPDATE, in primary-key order so two
requests never wait on each other in a cycle) the class's row and the row of every class of the
same school that shares a teacher with it. Any two requests whose lessons could clash (same class,
or classes sharing a teacher) lock a common row, so the second waits until the first has
committed and then sees its lesson. On SQLite, where FOR UPDATE does nothing, the settings open
every transaction with BEGIN IMMEDIATE, which serializes writers as a whole.

Cancelled lessons clash with nothing, and intervals that only touch (10:00-11:00, 11:00-12:00) do
not overlap.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import formats
from django.utils.translation import gettext as _

from accounts.models import User
from classrooms.models import Enrollment, EnrollmentRole, Lesson, SchoolClass
from classrooms.scheduling.exceptions import ScheduleClash
from classrooms.scheduling.occurrences import Slot


@dataclass(frozen=True)
class Timetables:
    """The classes whose lessons a class's new lessons must not overlap, read under lock."""

    school_class: SchoolClass
    # For each other class sharing a teacher: the ids of the teachers it shares.
    shared_teachers: dict[int, frozenset[int]]

    @property
    def class_ids(self) -> set[int]:
        return {self.school_class.pk, *self.shared_teachers}


def _teacher_ids(school_class: SchoolClass) -> set[int]:
    return set(
        Enrollment.objects.filter(
            school_class=school_class, role=EnrollmentRole.TEACHER
        ).values_list("user_id", flat=True)
    )


def _classes_taught_by(
    school_class: SchoolClass, teacher_ids: Collection[int]
) -> dict[int, set[int]]:
    taught: dict[int, set[int]] = {}
    for class_id, user_id in Enrollment.objects.filter(
        school_id=school_class.school_id, role=EnrollmentRole.TEACHER, user_id__in=teacher_ids
    ).values_list("school_class_id", "user_id"):
        taught.setdefault(class_id, set()).add(user_id)
    return taught


def lock_timetables(school_class: SchoolClass) -> Timetables:
    """Lock the rows that serialize scheduling for this class; refuse an archived class.

    Call inside the transaction that then checks and writes.
    """
    class_ids = {school_class.pk, *_classes_taught_by(school_class, _teacher_ids(school_class))}
    archived = dict(
        SchoolClass.objects.select_for_update()
        .filter(pk__in=class_ids)
        .order_by("pk")
        .values_list("pk", "archived_at")
    )
    if archived.get(school_class.pk) is not None:
        raise ValidationError(_("This class is archived: its lessons cannot change."))
    # Read the rosters again now that the rows are held: a teacher assigned meanwhile counts.
    taught = _classes_taught_by(school_class, _teacher_ids(school_class))
    taught.pop(school_class.pk, None)
    return Timetables(
        school_class=school_class,
        shared_teachers={class_id: frozenset(users) for class_id, users in taught.items()},
    )


def check_clashes(
    timetables: Timetables, slots: Iterable[Slot], *, exclude: Collection[int] = ()
) -> None:
    """Raise `ScheduleClash` naming the first lesson one of `slots` would overlap.

    `exclude` holds the lessons being moved or replaced, which cannot clash with themselves. One
    query, however many slots: a term of weekly lessons is checked at once.
    """
    wanted = sorted(slots)
    if not wanted:
        return
    others = list(
        Lesson.objects.filter(school_class_id__in=timetables.class_ids)
        .not_cancelled()
        .overlapping(wanted[0].starts_at, max(slot.ends_at for slot in wanted))
        .exclude(pk__in=list(exclude))
        .select_related("school", "school_class")
        .order_by("starts_at", "pk")
    )
    for slot in wanted:
        for other in others:
            if slot.overlaps(other.starts_at, other.ends_at):
                raise ScheduleClash(clash_message(timetables, other), lesson_id=other.pk)


def _when(lesson: Lesson) -> dict[str, str]:
    tz = lesson.school.tzinfo
    return {
        "day": formats.date_format(lesson.starts_at.astimezone(tz), "l j F"),
        "start": _clock(lesson.starts_at.astimezone(tz)),
        "end": _clock(lesson.ends_at.astimezone(tz)),
    }


def _clock(value: datetime) -> str:
    return formats.time_format(value, "H:i")


# The en dash between two times is the typographic range sign timetables print.
def clash_message(timetables: Timetables, other: Lesson) -> str:
    """Name the other lesson as people say it: its class, its title, its day and hours."""
    params = {"class": other.school_class.name, "title": other.title, **_when(other)}
    if other.school_class_id == timetables.school_class.pk:
        return _('%(class)s already has "%(title)s" on %(day)s, %(start)s–%(end)s.') % params  # noqa: RUF001
    teacher = (
        User.objects.filter(pk__in=timetables.shared_teachers[other.school_class_id])
        .order_by("family_name", "given_name", "pk")
        .first()
    )
    message = _(
        '%(teacher)s already teaches %(class)s "%(title)s" on %(day)s, %(start)s–%(end)s.'  # noqa: RUF001
    )
    return message % {"teacher": teacher.display_name if teacher else "", **params}
