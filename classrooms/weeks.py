"""Week and day arithmetic in a school's time zone, shared by every timetable page.

Pure functions, no database: the Monday of a week, a local span of days as aware datetimes (a day
across a daylight-saving change is 23 or 25 hours long), the day or week a URL parameter asks
for, and a week's items grouped by local day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from typing import TypeVar

from classrooms.models import School

T = TypeVar("T")

# How far from today the pages go by default: any school year, and never near `date.max`.
MAX_DAYS_AWAY = 3660


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def local_span(*, school: School, first: date, days: int) -> tuple[datetime, datetime]:
    """From midnight of `first` to midnight `days` later, in the school's zone."""
    tz = school.tzinfo
    return (
        datetime.combine(first, time.min, tzinfo=tz),
        datetime.combine(first + timedelta(days=days), time.min, tzinfo=tz),
    )


def day_asked(raw: str | None, *, today: date, max_days_away: int = MAX_DAYS_AWAY) -> date:
    """The day a `?date=`/`?week=` parameter names, or today when it is missing, malformed or
    further than `max_days_away` from today."""
    if not raw:
        return today
    try:
        asked = date.fromisoformat(raw)
    except ValueError:
        return today
    if abs((asked - today).days) > max_days_away:
        return today
    return asked


def week_asked(raw: str | None, *, today: date, max_days_away: int = MAX_DAYS_AWAY) -> date:
    """The Monday of the week a `?week=` parameter names: any day of a week stands for it."""
    return monday_of(day_asked(raw, today=today, max_days_away=max_days_away))


def by_day(
    items: Iterable[T], *, starts_at: Callable[[T], datetime], school: School, monday: date
) -> list[tuple[date, list[T]]]:
    """A week's items by the local day they start on, Monday first; weekend days appear only when
    they hold something."""
    grouped: dict[date, list[T]] = defaultdict(list)
    for item in items:
        grouped[starts_at(item).astimezone(school.tzinfo).date()].append(item)
    days = [monday + timedelta(days=offset) for offset in range(7)]
    return [(day, grouped[day]) for day in days if day.weekday() < 5 or grouped[day]]
