"""Timetable pages: my week, a class's week, the school admin's day, and the calendar feed.

Views parse the request, call selectors (and, for the feed's token, one service) and render.
Anything outside the user's school or roster raises `NotFound` in a selector and answers 404; so
does a calendar token that is unknown, renewed away, or of a deactivated person.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import CalendarFeed, User
from classrooms import selectors as school_selectors
from classrooms.models import Lesson
from classrooms.timetable import feeds, selectors, services
from classrooms.weeks import day_asked, monday_of, week_asked


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User), "login_required lets only real users through"  # noqa: S101
    return user


def _week_nav(monday: date, this_monday: date) -> dict[str, Any]:
    return {
        "monday": monday,
        "sunday": monday + timedelta(days=6),
        "previous_week": monday - timedelta(days=7),
        "next_week": monday + timedelta(days=7),
        "is_this_week": monday == this_monday,
    }


def _feed_urls(request: HttpRequest, feed: CalendarFeed) -> dict[str, str]:
    url = request.build_absolute_uri(reverse("classrooms:timetable:feed", args=[feed.token]))
    return {"feed_url": url, "feed_subscribe_url": "webcal://" + url.split("://", 1)[1]}


@require_GET
@login_required
def my_week(request: HttpRequest) -> HttpResponse:
    """A pupil's and a teacher's week (both, for someone who is both), school by school."""
    user = _user(request)
    now = timezone.now()
    schools = selectors.user_schools(user=user)
    # "This week" is the first school's: a person's schools share a region in practice.
    zone = schools[0].school.tzinfo if schools else timezone.get_current_timezone()
    today = now.astimezone(zone).date()
    monday = week_asked(request.GET.get("week"), today=today)
    weeks = selectors.user_week(user=user, schools=schools, monday=monday, now=now)
    context: dict[str, Any] = {
        "weeks": weeks,
        "other_schools": [item for item in schools if not item.has_lessons],
        "now": now,
        **_week_nav(monday, monday_of(today)),
    }
    if weeks:
        context.update(_feed_urls(request, services.calendar_feed_ensure(user=user)))
    return render(request, "classrooms/timetable/my_week.html", context)


@require_POST
@login_required
def feed_renew(request: HttpRequest) -> HttpResponse:
    services.calendar_feed_renew(user=_user(request))
    messages.success(
        request,
        _(
            "Your calendar has a new link. The old one has stopped working: subscribe again "
            "with the new one."
        ),
    )
    return HttpResponseRedirect(reverse("classrooms:timetable:week") + "#calendar")


@require_GET
@login_required
def class_week(request: HttpRequest, class_id: int) -> HttpResponse:
    user = _user(request)
    school_class = school_selectors.access_class_for_user(user=user, class_id=class_id)
    school = school_class.school
    now = timezone.now()
    today = now.astimezone(school.tzinfo).date()
    monday = week_asked(request.GET.get("week"), today=today)
    on_roster = school_selectors.roster_role(user=user, school_class=school_class) is not None
    week = selectors.class_week(
        school_class=school_class, monday=monday, now=now, on_roster=on_roster
    )
    return render(
        request,
        "classrooms/timetable/class_week.html",
        {
            "school_class": school_class,
            "school": school,
            "teachers": week.teachers,
            "days": week.days,
            "now": now,
            **_week_nav(monday, monday_of(today)),
        },
    )


@require_GET
@login_required
def school_day(request: HttpRequest, school_id: int) -> HttpResponse:
    school = school_selectors.access_school_for_admin(user=_user(request), school_id=school_id)
    now = timezone.now()
    today = now.astimezone(school.tzinfo).date()
    day = day_asked(request.GET.get("date"), today=today)
    entries = selectors.school_day(school=school, day=day)
    return render(
        request,
        "classrooms/timetable/school_day.html",
        {
            "school": school,
            "section": "day",
            "day": day,
            "is_today": day == today,
            "previous_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1),
            "entries": entries,
            "live_count": sum(1 for entry in entries if entry.lesson.is_live(now)),
            "cancelled_count": sum(1 for entry in entries if entry.lesson.state == "cancelled"),
            "now": now,
        },
    )


@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The feed a calendar app polls: no session, the secret token is the key."""
    feed = selectors.access_calendar_feed(token=token)
    now = timezone.now()
    user = feed.user

    def join_url(lesson: Lesson) -> str:
        return request.build_absolute_uri(reverse("classrooms:lesson", args=[lesson.key]))

    body = feeds.calendar_bytes(
        name=_("Homeroom: %(name)s") % {"name": user.display_name},
        lessons=selectors.feed_lessons(user=user, now=now),
        join_url=join_url,
        now=now,
    )
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="homeroom.ics"'
    # Personal and secret: no shared cache keeps it, no search engine lists it, and the URL is
    # not passed on to the sites the events link to.
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response
