"""Scheduling writes: one-off lessons, weekly series and their exceptions.

Every service is keyword-only and runs in one transaction. It first checks that the actor may
schedule the class (a school admin of its school, or one of its teachers) and raises `NotFound`
otherwise, as the selectors do, since the REST API calls these services directly. Bad input raises
`ValidationError` keyed by the parameter's name; an overlap raises `ScheduleClash` (a
`ValidationError`) naming the other lesson, checked under the lock described in `clashes`.

Rules held here, whoever calls:
- A lesson starts in the future, lasts 5 to 600 minutes and falls within its class's term. A
  lesson that has started, ended or been cancelled is not changed any more.
- Changing or cancelling one lesson of a series makes it an exception (`is_exception`), which
  later changes to the series leave as it is. Every change a calendar must pick up bumps the
  lesson's `sequence` (RFC 5545 SEQUENCE).
- Changing a series from a day on ends the series the day before and continues with a new
  `LessonSeries` row from that day (a series not begun yet is changed in place): the lessons
  before that day keep the old rule and stay linked to it. From that day on, the series' future
  lessons that are not exceptions are fitted to the new rule: the one of each day is kept and
  moved (same key, so links and calendar entries stay valid), one left without a day in the new
  rule is cancelled, a new day gets a new lesson. Exceptions and lessons already started move to
  the new series, and the new rule makes no lesson on their day.
- A moved or cancelled lesson that people expect is announced after commit through the
  `lesson_change_notify` task ("moved" or "cancelled"). For a change to a whole series only the
  lessons of the next `SERIES_NOTICE_HORIZON` are announced: a term's worth of notices for one
  decision would bury it; the timetable and the calendar feed show the rest.
- Nothing is written to the audit log yet: it has no scheduling actions (a model change).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import User
from classrooms.audit import audit_record
from classrooms.exceptions import NotFound
from classrooms.models import (
    WEEKDAYS,
    AuditAction,
    Lesson,
    LessonSeries,
    LessonState,
    SchoolClass,
)
from classrooms.scheduling.clashes import Timetables, check_clashes, lock_timetables
from classrooms.scheduling.occurrences import (
    Slot,
    local_day,
    start_of_day,
    week_order,
    weekly_slots,
)
from classrooms.scheduling.selectors import may_schedule

MIN_MINUTES = 5
MAX_MINUTES = 600
SERIES_NOTICE_HORIZON = timedelta(days=7)

NoticeKind = Literal["cancelled", "moved"]


# --- Checks ---------------------------------------------------------------------------------------


def _class_of(actor: User, school_class_id: int) -> SchoolClass:
    """The class read again with its school and term, once the actor may schedule it."""
    school_class = (
        SchoolClass.objects.select_related("school", "term").filter(pk=school_class_id).first()
    )
    if school_class is None or not may_schedule(user=actor, school_class=school_class):
        raise NotFound
    return school_class


def _clean_title(title: str) -> str:
    title = title.strip()
    if not title:
        raise ValidationError({"title": _("Give the lesson a title.")})
    if len(title) > 200:
        raise ValidationError({"title": _("Keep the title under 200 characters.")})
    return title


def _check_duration(minutes: float, field: str) -> None:
    if minutes <= 0:
        raise ValidationError({field: _("A lesson must end after it starts.")})
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise ValidationError(
            {
                field: _("A lesson lasts from %(min)d to %(max)d minutes.")
                % {"min": MIN_MINUTES, "max": MAX_MINUTES}
            }
        )


def _check_days_in_term(school_class: SchoolClass, first: date, last: date, field: str) -> None:
    term = school_class.term
    if first < term.starts_on or last > term.ends_on:
        raise ValidationError(
            {
                field: _("The term %(term)s runs from %(first)s to %(last)s.")
                % {
                    "term": term.name,
                    "first": date_format(term.starts_on),
                    "last": date_format(term.ends_on),
                }
            }
        )


def _check_slot(school_class: SchoolClass, starts_at: datetime, ends_at: datetime) -> Slot:
    if timezone.is_naive(starts_at) or timezone.is_naive(ends_at):
        raise ValidationError(_("Times must carry their time zone."))
    _check_duration((ends_at - starts_at).total_seconds() / 60, "ends_at")
    if starts_at <= timezone.now():
        raise ValidationError({"starts_at": _("A lesson cannot start in the past.")})
    tz = school_class.school.tzinfo
    _check_days_in_term(school_class, local_day(tz, starts_at), local_day(tz, ends_at), "starts_at")
    return Slot(starts_at, ends_at)


def _check_changeable(lesson: Lesson) -> None:
    """Only a lesson still to come can be moved, renamed or cancelled."""
    if lesson.state == LessonState.CANCELLED:
        raise ValidationError(_("This lesson is cancelled."))
    if lesson.state == LessonState.ENDED or lesson.ends_at <= timezone.now():
        raise ValidationError(_("This lesson is over."))
    if lesson.state == LessonState.LIVE or lesson.starts_at <= timezone.now():
        raise ValidationError(_("This lesson has started: it can no longer be changed."))


def _today(school_class: SchoolClass) -> date:
    return local_day(school_class.school.tzinfo, timezone.now())


def _check_from_date(series: LessonSeries, from_date: date) -> None:
    if from_date < _today(series.school_class):
        raise ValidationError({"from_date": _("Choose today or a later day.")})
    if from_date > series.ends_on:
        raise ValidationError(
            {"from_date": _("The series ends on %(day)s.") % {"day": date_format(series.ends_on)}}
        )


@dataclass(frozen=True)
class _Rule:
    """A weekly rule as a series holds it, checked."""

    title: str
    weekdays: tuple[str, ...]
    start_time: time
    duration_minutes: int
    starts_on: date
    ends_on: date

    @classmethod
    def checked(
        cls,
        school_class: SchoolClass,
        *,
        title: str,
        weekdays: Sequence[str],
        start_time: time,
        duration_minutes: int,
        starts_on: date,
        ends_on: date,
    ) -> _Rule:
        if not weekdays:
            raise ValidationError({"weekdays": _("Choose at least one day of the week.")})
        if any(code not in WEEKDAYS for code in weekdays):
            raise ValidationError(
                {"weekdays": _("Days of the week are MO, TU, WE, TH, FR, SA, SU.")}
            )
        _check_duration(duration_minutes, "duration_minutes")
        if starts_on < _today(school_class):
            raise ValidationError({"starts_on": _("The first day cannot be in the past.")})
        if ends_on < starts_on:
            raise ValidationError({"ends_on": _("The last day cannot come before the first day.")})
        _check_days_in_term(school_class, starts_on, starts_on, "starts_on")
        _check_days_in_term(school_class, ends_on, ends_on, "ends_on")
        return cls(
            title=_clean_title(title),
            weekdays=week_order(weekdays),
            start_time=start_time.replace(tzinfo=None, microsecond=0),
            duration_minutes=duration_minutes,
            starts_on=starts_on,
            ends_on=ends_on,
        )

    def slots(self, school_class: SchoolClass) -> list[Slot]:
        """The rule's occurrences still to come."""
        now = timezone.now()
        return [
            slot
            for slot in weekly_slots(
                tz=school_class.school.tzinfo,
                weekdays=self.weekdays,
                start_time=self.start_time,
                duration=timedelta(minutes=self.duration_minutes),
                starts_on=self.starts_on,
                ends_on=self.ends_on,
            )
            if slot.starts_at > now
        ]

    def fields(self) -> dict[str, object]:
        return {
            "title": self.title,
            "weekdays": ",".join(self.weekdays),
            "start_time": self.start_time,
            "duration_minutes": self.duration_minutes,
            "starts_on": self.starts_on,
            "ends_on": self.ends_on,
        }


# --- Notices --------------------------------------------------------------------------------------


def _notify_on_commit(lesson_id: int, kind: NoticeKind) -> None:
    """Announce a change once it is committed; a broker failure must not undo the change."""

    def enqueue() -> None:
        # Imported when needed: the task module imports the services of every app.
        from classrooms.tasks import lesson_change_notify

        lesson_change_notify.delay(lesson_id, kind)

    transaction.on_commit(enqueue, robust=True)


def _within_notice_horizon(lesson: Lesson) -> bool:
    return lesson.starts_at <= timezone.now() + SERIES_NOTICE_HORIZON


def _audit(
    *,
    actor: User,
    school_class: SchoolClass,
    action: AuditAction,
    target: Lesson | LessonSeries,
    **details: object,
) -> None:
    """Record a scheduling change in the school's audit log, in the change's transaction."""
    is_lesson = isinstance(target, Lesson)
    audit_record(
        school_id=school_class.school_id,
        actor_id=actor.pk,
        action=action,
        target_type="lesson" if is_lesson else "series",
        target_id=target.key if isinstance(target, Lesson) else target.pk,
        target_label=f"{school_class.name}: {target.title}",
        details={key: str(value) for key, value in details.items()},
    )


# --- One lesson -----------------------------------------------------------------------------------


@transaction.atomic
def lesson_schedule(
    *, actor: User, school_class: SchoolClass, title: str, starts_at: datetime, ends_at: datetime
) -> Lesson:
    """A one-off lesson of the class, unless it clashes with the class's or a teacher's lessons."""
    school_class = _class_of(actor, school_class.pk)
    title = _clean_title(title)
    slot = _check_slot(school_class, starts_at, ends_at)
    timetables = lock_timetables(school_class)
    check_clashes(timetables, [slot])
    lesson = Lesson.objects.create(
        school=school_class.school,
        school_class=school_class,
        title=title,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    _audit(
        actor=actor,
        school_class=school_class,
        action=AuditAction.LESSON_SCHEDULED,
        target=lesson,
        starts_at=starts_at.isoformat(),
        ends_at=ends_at.isoformat(),
    )
    return lesson


# Locks are always taken in the same order, class rows (`lock_timetables`), then the series, then
# its lessons, so that two services never wait on each other in a cycle.


def _locked_lesson(actor: User, lesson: Lesson) -> tuple[Lesson, SchoolClass, Timetables]:
    class_id = Lesson.objects.filter(pk=lesson.pk).values_list("school_class_id", flat=True).first()
    if class_id is None:
        raise NotFound
    school_class = _class_of(actor, class_id)
    timetables = lock_timetables(school_class)
    current = Lesson.objects.select_for_update().get(pk=lesson.pk)
    _check_changeable(current)
    return current, school_class, timetables


@transaction.atomic
def lesson_update(
    *,
    actor: User,
    lesson: Lesson,
    title: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> Lesson:
    """Move or rename one lesson still to come.

    A new start without a new end keeps the lesson's length. A lesson of a series becomes an
    exception, so changing the series later leaves it where it was put. Nothing changed, nothing
    written; a move is announced ("moved") after commit.
    """
    current, school_class, timetables = _locked_lesson(actor, lesson)
    new_title = current.title if title is None else _clean_title(title)
    new_start = current.starts_at if starts_at is None else starts_at
    if ends_at is None:
        ends_at = new_start + (current.ends_at - current.starts_at)
    moved = (new_start, ends_at) != (current.starts_at, current.ends_at)
    if not moved and new_title == current.title:
        return current
    if moved:
        slot = _check_slot(school_class, new_start, ends_at)
        check_clashes(timetables, [slot], exclude=[current.pk])
    current.title, current.starts_at, current.ends_at = new_title, new_start, ends_at
    current.is_exception = current.series_id is not None
    current.sequence += 1
    current.save(
        update_fields=["title", "starts_at", "ends_at", "is_exception", "sequence", "updated_at"]
    )
    if moved:
        _notify_on_commit(current.pk, "moved")
    _audit(
        actor=actor,
        school_class=school_class,
        action=AuditAction.LESSON_UPDATED,
        target=current,
        starts_at=current.starts_at.isoformat(),
        ends_at=current.ends_at.isoformat(),
    )
    return current


@transaction.atomic
def lesson_cancel(*, actor: User, lesson: Lesson) -> Lesson:
    """Call off one lesson still to come; it stays, marked cancelled, and is announced."""
    current, school_class, _timetables = _locked_lesson(actor, lesson)
    current.state = LessonState.CANCELLED
    current.is_exception = current.series_id is not None
    current.sequence += 1
    current.save(update_fields=["state", "is_exception", "sequence", "updated_at"])
    _notify_on_commit(current.pk, "cancelled")
    _audit(
        actor=actor,
        school_class=school_class,
        action=AuditAction.LESSON_CANCELLED,
        target=current,
        starts_at=current.starts_at.isoformat(),
    )
    return current


# --- Weekly series --------------------------------------------------------------------------------


def _no_lessons() -> ValidationError:
    return ValidationError(
        {"weekdays": _("No lesson falls on these days between the first and the last day.")}
    )


@transaction.atomic
def series_create(
    *,
    actor: User,
    school_class: SchoolClass,
    title: str,
    weekdays: Sequence[str],
    start_time: time,
    duration_minutes: int,
    starts_on: date,
    ends_on: date | None = None,
) -> LessonSeries:
    """A weekly series and all its lessons, to `ends_on` or else to the last day of the term.

    Every occurrence is checked for clashes first: the first one is named and nothing is written.
    """
    school_class = _class_of(actor, school_class.pk)
    rule = _Rule.checked(
        school_class,
        title=title,
        weekdays=weekdays,
        start_time=start_time,
        duration_minutes=duration_minutes,
        starts_on=starts_on,
        ends_on=school_class.term.ends_on if ends_on is None else ends_on,
    )
    slots = rule.slots(school_class)
    if not slots:
        raise _no_lessons()
    check_clashes(lock_timetables(school_class), slots)
    series = LessonSeries.objects.create(
        school=school_class.school, school_class=school_class, created_by=actor, **rule.fields()
    )
    Lesson.objects.bulk_create(
        [_series_lesson(school_class, series, rule.title, slot) for slot in slots]
    )
    _audit(
        actor=actor,
        school_class=school_class,
        action=AuditAction.SERIES_CREATED,
        target=series,
        weekdays=series.weekdays,
        start_time=series.start_time.strftime("%H:%M"),
        duration_minutes=series.duration_minutes,
        starts_on=series.starts_on,
        ends_on=series.ends_on,
        lessons=len(slots),
    )
    return series


def _locked_series(
    actor: User, series: LessonSeries
) -> tuple[LessonSeries, SchoolClass, Timetables]:
    class_id = (
        LessonSeries.objects.filter(pk=series.pk).values_list("school_class_id", flat=True).first()
    )
    if class_id is None:
        raise NotFound
    school_class = _class_of(actor, class_id)
    timetables = lock_timetables(school_class)
    current = LessonSeries.objects.select_for_update().get(pk=series.pk)
    current.school_class = school_class
    return current, school_class, timetables


@transaction.atomic
def series_update_from(
    *,
    actor: User,
    series: LessonSeries,
    from_date: date,
    title: str | None = None,
    weekdays: Sequence[str] | None = None,
    start_time: time | None = None,
    duration_minutes: int | None = None,
    ends_on: date | None = None,
) -> LessonSeries:
    """Change a series from a day on (today or later); return the series that carries the new rule.

    Parameters left None keep the series' value; a change that changes nothing writes nothing.
    See the module's docstring for what happens to each lesson; the new rule's lessons are
    checked for clashes before anything is written.
    """
    current, school_class, timetables = _locked_series(actor, series)
    _check_from_date(current, from_date)
    begins = max(from_date, current.starts_on)
    rule = _Rule.checked(
        school_class,
        title=current.title if title is None else title,
        weekdays=current.weekday_codes if weekdays is None else weekdays,
        start_time=current.start_time if start_time is None else start_time,
        duration_minutes=current.duration_minutes if duration_minutes is None else duration_minutes,
        starts_on=begins,
        ends_on=current.ends_on if ends_on is None else ends_on,
    )
    unchanged = {**rule.fields(), "starts_on": current.starts_on}
    if all(getattr(current, field) == value for field, value in unchanged.items()):
        return current
    tz = school_class.school.tzinfo
    now = timezone.now()
    lessons = list(
        current.lessons.select_for_update()
        .filter(series_start__gte=start_of_day(tz, begins))
        .order_by("series_start")
    )
    # Lessons the new rule may take over: still to come, never changed on their own.
    replaceable = [
        lesson
        for lesson in lessons
        if not lesson.is_exception
        and lesson.state in (LessonState.SCHEDULED, LessonState.CANCELLED)
        and lesson.starts_at > now
    ]
    kept = [lesson for lesson in lessons if lesson not in replaceable]
    kept_days = {local_day(tz, lesson.series_start or lesson.starts_at) for lesson in kept}
    slots = [
        slot for slot in rule.slots(school_class) if local_day(tz, slot.starts_at) not in kept_days
    ]
    check_clashes(timetables, slots, exclude=[lesson.pk for lesson in replaceable])

    if begins > current.starts_on:
        current.ends_on = begins - timedelta(days=1)
        current.save(update_fields=["ends_on"])
        target = LessonSeries.objects.create(
            school=school_class.school, school_class=school_class, created_by=actor, **rule.fields()
        )
        Lesson.objects.filter(pk__in=[lesson.pk for lesson in kept]).update(series=target)
    else:
        for field, value in rule.fields().items():
            setattr(current, field, value)
        current.save()
        target = current
    _fit_lessons(target, school_class, rule, slots, replaceable)
    _audit(
        actor=actor,
        school_class=school_class,
        action=AuditAction.SERIES_UPDATED,
        target=target,
        from_date=begins,
        weekdays=target.weekdays,
        start_time=target.start_time.strftime("%H:%M"),
        duration_minutes=target.duration_minutes,
        ends_on=target.ends_on,
    )
    return target


def _fit_lessons(
    series: LessonSeries,
    school_class: SchoolClass,
    rule: _Rule,
    slots: list[Slot],
    replaceable: list[Lesson],
) -> None:
    """Give each slot the series' lesson of its day (moved) or a new one; cancel the rest."""
    tz = school_class.school.tzinfo
    by_day = {
        local_day(tz, lesson.series_start or lesson.starts_at): lesson for lesson in replaceable
    }
    new = []
    for slot in slots:
        lesson = by_day.pop(local_day(tz, slot.starts_at), None)
        if lesson is None:
            new.append(_series_lesson(school_class, series, rule.title, slot))
            continue
        moved = (lesson.starts_at, lesson.ends_at) != (slot.starts_at, slot.ends_at)
        changed = moved or lesson.title != rule.title or lesson.state != LessonState.SCHEDULED
        lesson.series, lesson.series_start = series, slot.starts_at
        lesson.starts_at, lesson.ends_at, lesson.title = slot.starts_at, slot.ends_at, rule.title
        if changed:
            lesson.sequence += 1
        was_cancelled = lesson.state == LessonState.CANCELLED
        lesson.state = LessonState.SCHEDULED
        lesson.save()
        if moved and not was_cancelled and _within_notice_horizon(lesson):
            _notify_on_commit(lesson.pk, "moved")
    Lesson.objects.bulk_create(new)
    for lesson in by_day.values():
        if lesson.state == LessonState.SCHEDULED:
            _cancel_quietly(lesson)


def _series_lesson(
    school_class: SchoolClass, series: LessonSeries, title: str, slot: Slot
) -> Lesson:
    """An occurrence of a series, unsaved: it remembers its planned start as `series_start`."""
    return Lesson(
        school=school_class.school,
        school_class=school_class,
        title=title,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        series=series,
        series_start=slot.starts_at,
    )


def _cancel_quietly(lesson: Lesson) -> None:
    """Cancel a lesson the series no longer has; announce it only when it is soon."""
    lesson.state = LessonState.CANCELLED
    lesson.sequence += 1
    lesson.save(update_fields=["state", "sequence", "updated_at"])
    if _within_notice_horizon(lesson):
        _notify_on_commit(lesson.pk, "cancelled")


@transaction.atomic
def series_cancel_from(*, actor: User, series: LessonSeries, from_date: date) -> int:
    """End a series early: cancel its lessons from `from_date` (today or later) on; return how
    many.

    Exceptions (lessons moved or cancelled on their own) and lessons already started are left as
    they are. The series now ends the day before (a series cancelled from its first day keeps
    its first day as its last, the model wanting a non-empty range).
    """
    current, school_class, _timetables = _locked_series(actor, series)
    _check_from_date(current, from_date)
    begins = max(from_date, current.starts_on)
    tz = school_class.school.tzinfo
    lessons = list(
        current.lessons.select_for_update()
        .filter(
            series_start__gte=start_of_day(tz, begins),
            is_exception=False,
            state=LessonState.SCHEDULED,
            starts_at__gt=timezone.now(),
        )
        .order_by("starts_at")
    )
    for lesson in lessons:
        _cancel_quietly(lesson)
    current.ends_on = max(current.starts_on, begins - timedelta(days=1))
    current.save(update_fields=["ends_on"])
    _audit(
        actor=actor,
        school_class=school_class,
        action=AuditAction.SERIES_CANCELLED,
        target=current,
        from_date=begins,
        lessons_cancelled=len(lessons),
    )
    return len(lessons)
