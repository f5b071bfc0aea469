"""Attendance rules: from the relay's presence intervals to present, late, left early or absent.

Pure functions over plain values (no database, no clock of their own), so that every rule is tested
on its own. The rules, with the school's thresholds:
- Intervals whose gap is at most the reconnect grace (30 s by default) are one presence: a dropped
  network or a server restart does not split a pupil's attendance. Every interval after a user's
  first is a reconnect, whatever the gap.
- An interval still open counts until now while the lesson runs; once the lesson is over (or the
  relay is gone) it counts until the relay last saw the user, so a crash never gives anyone hours.
- A pupil with no presence is absent; whose first join is after the start plus the late threshold
  is late; whose last leave is before the end minus the left-early threshold is left early, once
  the lesson is over (a pupil still in a running lesson has not left). A pupil both late and gone
  early is late: arriving late is the first thing a teacher acts on, and the timeline shows the
  rest. Anyone else is present.
- The end is the scheduled end, or earlier when a teacher ended the lesson for everyone, so that
  nobody leaves early by being sent home.
- A teacher's latest correction overrides the measured status, and keeps its reason.
- Minutes connected count the lesson's own time only, from its start to its end: waiting before
  the start is not attending.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from classrooms.models import AttendanceStatus, School


@dataclass(frozen=True)
class Interval:
    """One stretch of a peer connection, as recorded (`left_at` None while open)."""

    joined_at: datetime
    left_at: datetime | None
    last_seen_at: datetime


@dataclass(frozen=True)
class Span:
    """A presence: one or more intervals, merged across short gaps."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("A presence cannot end before it starts.")


@dataclass(frozen=True)
class LessonTimes:
    starts_at: datetime
    ends_at: datetime
    # When a teacher ended the lesson for everyone, if they did.
    ended_at: datetime | None = None

    @property
    def end(self) -> datetime:
        """When the lesson really ended (or will end)."""
        if self.ended_at is None:
            return self.ends_at
        return max(self.starts_at, min(self.ends_at, self.ended_at))

    def is_over(self, now: datetime) -> bool:
        return self.ended_at is not None or now >= self.ends_at


@dataclass(frozen=True)
class Thresholds:
    late_after: timedelta
    left_early: timedelta
    reconnect_grace: timedelta

    @classmethod
    def of_school(cls, school: School) -> Thresholds:
        return cls(
            late_after=timedelta(minutes=school.late_after_minutes),
            left_early=timedelta(minutes=school.left_early_minutes),
            reconnect_grace=timedelta(seconds=school.reconnect_grace_seconds),
        )


@dataclass(frozen=True)
class Correction:
    status: AttendanceStatus
    reason: str
    corrected_at: datetime
    corrected_by_name: str


@dataclass(frozen=True)
class Attendance:
    """One participant's attendance in one lesson."""

    status: AttendanceStatus
    # What the relay's record says, before any correction.
    measured: AttendanceStatus
    correction: Correction | None
    presences: tuple[Span, ...]
    reconnects: int
    connected: timedelta
    # Still connected to a lesson that runs: there is no last leave yet.
    still_here: bool

    @property
    def first_join(self) -> datetime | None:
        return self.presences[0].start if self.presences else None

    @property
    def last_leave(self) -> datetime | None:
        if not self.presences or self.still_here:
            return None
        return self.presences[-1].end

    @property
    def minutes(self) -> int:
        """Whole minutes connected, rounded to the nearest."""
        return round(self.connected / timedelta(minutes=1))


def merged_presences(
    intervals: Iterable[Interval], *, grace: timedelta, open_until: datetime | None
) -> tuple[tuple[Span, ...], int]:
    """Merge intervals into presences across gaps of at most `grace`; count the reconnects.

    An open interval ends at `open_until` (now, while the lesson runs) or, when that is None, at
    the last moment the relay saw the user.
    """
    spans = sorted(
        (_span(interval, open_until=open_until) for interval in intervals),
        key=lambda span: span.start,
    )
    merged: list[Span] = []
    for span in spans:
        if merged and span.start - merged[-1].end <= grace:
            merged[-1] = Span(start=merged[-1].start, end=max(merged[-1].end, span.end))
        else:
            merged.append(span)
    return tuple(merged), max(len(spans) - 1, 0)


def _span(interval: Interval, *, open_until: datetime | None) -> Span:
    if interval.left_at is not None:
        end = interval.left_at
    elif open_until is not None:
        end = open_until
    else:
        end = interval.last_seen_at
    return Span(start=interval.joined_at, end=max(end, interval.joined_at))


def attendance_of(
    intervals: Iterable[Interval],
    *,
    lesson: LessonTimes,
    thresholds: Thresholds,
    now: datetime,
    correction: Correction | None = None,
) -> Attendance:
    """A participant's attendance in `lesson` as of `now`, by the rules of this module."""
    intervals = list(intervals)
    running = not lesson.is_over(now)
    presences, reconnects = merged_presences(
        intervals, grace=thresholds.reconnect_grace, open_until=now if running else None
    )
    measured = _measured_status(presences, lesson=lesson, thresholds=thresholds, now=now)
    return Attendance(
        status=correction.status if correction is not None else measured,
        measured=measured,
        correction=correction,
        presences=presences,
        reconnects=reconnects,
        connected=_connected_during(presences, lesson=lesson),
        still_here=running and any(interval.left_at is None for interval in intervals),
    )


def _measured_status(
    presences: tuple[Span, ...], *, lesson: LessonTimes, thresholds: Thresholds, now: datetime
) -> AttendanceStatus:
    if not presences:
        return AttendanceStatus.ABSENT
    if presences[0].start > lesson.starts_at + thresholds.late_after:
        return AttendanceStatus.LATE
    if lesson.is_over(now) and presences[-1].end < lesson.end - thresholds.left_early:
        return AttendanceStatus.LEFT_EARLY
    return AttendanceStatus.PRESENT


def _connected_during(presences: tuple[Span, ...], *, lesson: LessonTimes) -> timedelta:
    total = timedelta()
    for span in presences:
        overlap = min(span.end, lesson.end) - max(span.start, lesson.starts_at)
        total += max(overlap, timedelta())
    return total


@dataclass(frozen=True)
class TermCounts:
    """One pupil's attendance over a term's lessons."""

    present: int = 0
    late: int = 0
    left_early: int = 0
    absent: int = 0

    @property
    def lessons(self) -> int:
        return self.present + self.late + self.left_early + self.absent

    @property
    def rate(self) -> float | None:
        """The share of lessons the pupil attended at all (late and left early count as there);
        None when no lesson counted."""
        if not self.lessons:
            return None
        return (self.lessons - self.absent) / self.lessons

    def adding(self, status: AttendanceStatus) -> TermCounts:
        field = str(status)
        counts = {
            "present": self.present,
            "late": self.late,
            "left_early": self.left_early,
            "absent": self.absent,
        }
        counts[field] += 1
        return TermCounts(**counts)
