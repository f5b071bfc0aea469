"""A person's lessons as an iCalendar feed (RFC 5545), for calendar apps to subscribe to.

Pure: it turns lessons into bytes and reads nothing from the database. Each event keeps its
lesson's wall-clock time in the school's zone (`DTSTART;TZID=Europe/Paris:...`) with the zone's
VTIMEZONE, so a 09:00 lesson stays at 09:00 across daylight-saving changes in every app. A lesson
is one event for its whole life: its UID never changes, SEQUENCE counts its changes, and a
cancelled lesson stays in the feed with STATUS:CANCELLED so that apps remove it rather than
keep a stale copy.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta

from django.utils.translation import gettext as _
from icalendar import Calendar, Event, Parameters, Timezone, vUri

from classrooms.models import Lesson, LessonState
from classrooms.timetable.selectors import FeedLesson

PRODID = "-//Homeroom//Timetable//EN"
UID_DOMAIN = "homeroom"
# How often calendar apps should come back for changes (RFC 7986 and the older Microsoft name).
REFRESH_INTERVAL = timedelta(hours=1)
PUBLISHED_TTL = "PT1H"


def lesson_uid(lesson: Lesson) -> str:
    return f"{lesson.key}@{UID_DOMAIN}"


@functools.lru_cache(maxsize=64)
def vtimezone(tzid: str, first_year: int, last_year: int) -> Timezone:
    """The zone's VTIMEZONE, with its offset changes from `first_year` to `last_year`.

    Built from the system's tz database by icalendar; cached, since the transitions of a zone in
    given years do not change while the process runs.
    """
    return Timezone.from_tzinfo(
        zoneinfo.ZoneInfo(tzid),
        tzid=tzid,
        first_date=date(first_year, 1, 1),
        last_date=date(last_year + 1, 1, 1),
    )


def _description(item: FeedLesson, join_url: str) -> str:
    lesson = item.lesson
    lines = [
        _("Class: %(name)s") % {"name": lesson.school_class.name},
        _("Course: %(title)s") % {"title": lesson.school_class.course.title},
    ]
    if item.teachers:
        lines.append(_("Teacher: %(names)s") % {"names": ", ".join(item.teachers)})
    lines.append(_("Join: %(url)s") % {"url": join_url})
    return "\n".join(lines)


def lesson_event(item: FeedLesson, *, join_url: str, now: datetime) -> Event:
    lesson = item.lesson
    tz = lesson.school.tzinfo
    event = Event()
    event.add("uid", lesson_uid(lesson))
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", lesson.starts_at.astimezone(tz))
    event.add("dtend", lesson.ends_at.astimezone(tz))
    event.add("summary", lesson.title)
    event.add("description", _description(item, join_url))
    # Apps that ignore URL and CONFERENCE (most web calendars) still make the location a link.
    event.add("location", join_url)
    event.add("url", vUri(join_url))
    event.add(
        "conference",
        vUri(join_url),
        # A list, so that it is written as two values (FEATURE=VIDEO,AUDIO), not one quoted one.
        parameters=Parameters(
            {"VALUE": "URI", "FEATURE": ["VIDEO", "AUDIO"], "LABEL": _("Join lesson")}
        ),
    )
    event.add("categories", [lesson.school_class.course.title])
    event.add("sequence", lesson.sequence)
    event.add("status", "CANCELLED" if lesson.state == LessonState.CANCELLED else "CONFIRMED")
    event.add("last-modified", lesson.updated_at.astimezone(UTC))
    event.add("transp", "OPAQUE")
    return event


def calendar_bytes(
    *,
    name: str,
    lessons: Iterable[FeedLesson],
    join_url: Callable[[Lesson], str],
    now: datetime,
) -> bytes:
    """The feed: one VTIMEZONE per school zone in use, then one VEVENT per lesson."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("name", name)
    calendar.add("x-wr-calname", name)
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", PUBLISHED_TTL)
    events = []
    zones: dict[str, tuple[int, int]] = {}
    for item in lessons:
        lesson = item.lesson
        events.append(lesson_event(item, join_url=join_url(lesson), now=now))
        first, last = zones.get(lesson.school.time_zone, (lesson.starts_at.year,) * 2)
        zones[lesson.school.time_zone] = (
            min(first, lesson.starts_at.year - 1),
            max(last, lesson.ends_at.year + 1),
        )
    # RFC 5545 wants every TZID defined in the same object, before the events that use it.
    for tzid, (first, last) in sorted(zones.items()):
        calendar.add_component(vtimezone(tzid, first, last))
    for event in events:
        calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical
