"""Wall-clock times in a school's zone and the occurrences of a weekly rule, as UTC instants.

Pure functions, no database. A weekly rule is expanded by python-dateutil's `rrule` on naive
local datetimes and each occurrence is then placed in the school's zone on its own, so a 09:00
lesson stays at 09:00 on the wall clock on both sides of a daylight-saving change (its UTC instant
moves instead). A wall-clock time that falls in the hour skipped in spring is read with the offset
in force before the change (`fold=0`), as `zoneinfo` does; in the hour repeated in autumn it is
the first of the two.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from dateutil.rrule import FR, MO, SA, SU, TH, TU, WE, WEEKLY, rrule

from classrooms.models import WEEKDAYS

_RRULE_WEEKDAYS = dict(zip(WEEKDAYS, (MO, TU, WE, TH, FR, SA, SU), strict=True))


@dataclass(frozen=True, order=True)
class Slot:
    """When a lesson would be on: [starts_at, ends_at), both aware, in UTC."""

    starts_at: datetime
    ends_at: datetime

    def overlaps(self, starts_at: datetime, ends_at: datetime) -> bool:
        """Touching is not overlapping: 10:00-11:00 and 11:00-12:00 can both happen."""
        return self.starts_at < ends_at and starts_at < self.ends_at


def at_local(tz: zoneinfo.ZoneInfo, day: date, wall_time: time) -> datetime:
    """The UTC instant of a wall-clock time on a day in a zone."""
    return datetime.combine(day, wall_time.replace(tzinfo=None), tzinfo=tz).astimezone(UTC)


def local_day(tz: zoneinfo.ZoneInfo, instant: datetime) -> date:
    return instant.astimezone(tz).date()


def start_of_day(tz: zoneinfo.ZoneInfo, day: date) -> datetime:
    return at_local(tz, day, time.min)


def week_order(weekdays: Sequence[str]) -> tuple[str, ...]:
    """RFC 5545 weekday codes, each once, Monday first; the caller refuses unknown codes."""
    wanted = set(weekdays)
    return tuple(code for code in WEEKDAYS if code in wanted)


def weekly_slots(
    *,
    tz: zoneinfo.ZoneInfo,
    weekdays: Sequence[str],
    start_time: time,
    duration: timedelta,
    starts_on: date,
    ends_on: date,
) -> list[Slot]:
    """Every occurrence of "on these weekdays at this local time" from one day to another."""
    rule = rrule(
        WEEKLY,
        byweekday=[_RRULE_WEEKDAYS[code] for code in week_order(weekdays)],
        dtstart=datetime.combine(starts_on, start_time.replace(tzinfo=None)),
        until=datetime.combine(ends_on, time.max),
    )
    slots = []
    for local in rule:
        starts_at = local.replace(tzinfo=tz).astimezone(UTC)
        slots.append(Slot(starts_at, starts_at + duration))
    return slots
