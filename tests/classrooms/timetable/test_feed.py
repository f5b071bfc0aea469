"""The calendar feed (RFC 5545), read back with icalendar: every property of an event, the
school's VTIMEZONE, a series across the change to summer time, the headers, the secret URL and
its renewal. A calendar app polls the feed without a session: the token is the only key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from icalendar import Calendar, Component, Timezone
from pytest_django.asserts import assertContains, assertRedirects

from accounts.models import CalendarFeed, Membership, Role, User
from classrooms.models import EnrollmentRole, Lesson, LessonState
from classrooms.timetable import services
from tests.factories import (
    EnrollmentFactory,
    LessonFactory,
    SchoolClassFactory,
    SchoolFactory,
    pupil_of,
    teacher_of,
)

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")


def feed_url(user: User) -> str:
    return f"/calendar/{services.calendar_feed_ensure(user=user).token}.ics"


def read_feed(client, user: User) -> tuple[Calendar, str]:
    response = client.get(feed_url(user))
    assert response.status_code == 200
    text = response.content.decode()
    return Calendar.from_ical(text), text


def events_by_uid(calendar: Calendar) -> dict[str, Component]:
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


def feed_zone(calendar: Calendar, index: int = 0) -> Timezone:
    zone = calendar.walk("VTIMEZONE")[index]
    assert isinstance(zone, Timezone)
    return zone


def unfolded(text: str) -> str:
    """The feed with RFC 5545 line folding undone, to read whole content lines."""
    return text.replace("\r\n ", "")


class TestContent:
    def test_an_event_carries_every_property_a_calendar_app_needs(self, campus, client, frozen_now):
        lesson = campus.lesson_x
        Lesson.objects.filter(pk=lesson.pk).update(sequence=3)
        lesson.refresh_from_db()
        calendar, text = read_feed(client, campus.pupil_x)
        assert str(calendar["VERSION"]) == "2.0"
        assert "Homeroom" in str(calendar["PRODID"])
        assert str(calendar["X-WR-CALNAME"]) == "Homeroom: Pia Xavier"
        assert calendar.decoded("REFRESH-INTERVAL") == timedelta(hours=1)
        event = events_by_uid(calendar)[f"{lesson.key}@homeroom"]
        join = f"http://testserver/lessons/{lesson.key}/"
        assert event.decoded("DTSTAMP") == frozen_now
        assert event.decoded("DTSTART") == lesson.starts_at
        assert event.decoded("DTEND") == lesson.ends_at
        assert event["DTSTART"].params["TZID"] == "Europe/Paris"
        assert event["DTEND"].params["TZID"] == "Europe/Paris"
        assert event.decoded("DTSTART") == datetime(2025, 3, 12, 10, 25, tzinfo=PARIS)
        assert event.decoded("DTSTART").tzinfo.key == "Europe/Paris"
        assert str(event["SUMMARY"]) == "Fractions"
        description = str(event["DESCRIPTION"])
        assert "Class: 5X Maths" in description
        assert "Teacher: Theo Xenakis" in description
        assert join in description
        assert str(event["LOCATION"]) == join
        assert str(event["URL"]) == join
        assert str(event["CONFERENCE"]) == join
        assert event["CONFERENCE"].params["VALUE"] == "URI"
        assert event["CONFERENCE"].params["LABEL"] == "Join lesson"
        assert list(event["CONFERENCE"].params["FEATURE"]) == ["VIDEO", "AUDIO"]
        assert f"CONFERENCE;FEATURE=VIDEO,AUDIO;LABEL=Join lesson;VALUE=URI:{join}\r\n" in unfolded(
            text
        )
        assert event.decoded("SEQUENCE") == 3
        assert str(event["STATUS"]) == "CONFIRMED"
        assert event.decoded("LAST-MODIFIED") == lesson.updated_at.replace(microsecond=0)

    def test_the_feed_defines_the_school_s_zone_before_its_events(self, campus, client):
        calendar, text = read_feed(client, campus.pupil_x)
        zones = calendar.walk("VTIMEZONE")
        assert [str(zone["TZID"]) for zone in zones] == ["Europe/Paris"]
        assert calendar.get_missing_tzids() == set()
        assert text.index("BEGIN:VTIMEZONE") < text.index("BEGIN:VEVENT")
        paris = feed_zone(calendar).to_tz()
        assert datetime(2025, 1, 15, 12, tzinfo=paris).utcoffset() == timedelta(hours=1)
        assert datetime(2025, 7, 15, 12, tzinfo=paris).utcoffset() == timedelta(hours=2)

    def test_a_weekly_09_00_lesson_stays_at_09_00_across_the_change_to_summer_time(
        self, campus, client
    ):
        """Paris moves to summer time on 30 March 2025: 09:00 is 08:00 UTC before, 07:00 after.
        Both events say 09:00 with the zone's TZID, and the feed's own VTIMEZONE maps them back
        to the right instants."""
        before = LessonFactory.create(
            school_class=campus.class_x, starts_at=datetime(2025, 3, 24, 8, tzinfo=UTC)
        )
        after = LessonFactory.create(
            school_class=campus.class_x, starts_at=datetime(2025, 3, 31, 7, tzinfo=UTC)
        )
        calendar, text = read_feed(client, campus.pupil_x)
        lines = unfolded(text)
        assert "DTSTART;TZID=Europe/Paris:20250324T090000\r\n" in lines
        assert "DTSTART;TZID=Europe/Paris:20250331T090000\r\n" in lines
        events = events_by_uid(calendar)
        zone = feed_zone(calendar).to_tz()
        for lesson in (before, after):
            event = events[f"{lesson.key}@homeroom"]
            local = event.decoded("DTSTART").replace(tzinfo=None)
            assert local.time().hour == 9
            assert event["DTSTART"].params["TZID"] == "Europe/Paris"
            assert local.replace(tzinfo=zone) == lesson.starts_at

    def test_a_cancelled_lesson_stays_in_the_feed_as_cancelled(self, campus, client, frozen_now):
        cancelled = LessonFactory.create(
            school_class=campus.class_x,
            starts_at=frozen_now + timedelta(days=2),
            state=LessonState.CANCELLED,
            sequence=1,
        )
        calendar, _text = read_feed(client, campus.pupil_x)
        event = events_by_uid(calendar)[f"{cancelled.key}@homeroom"]
        assert str(event["STATUS"]) == "CANCELLED"
        assert event.decoded("SEQUENCE") == 1

    def test_the_uid_of_a_lesson_does_not_change_when_it_moves(self, campus, client):
        calendar, _text = read_feed(client, campus.pupil_x)
        assert f"{campus.lesson_x.key}@homeroom" in events_by_uid(calendar)
        Lesson.objects.filter(pk=campus.lesson_x.pk).update(
            starts_at=campus.lesson_x.starts_at + timedelta(hours=1),
            ends_at=campus.lesson_x.ends_at + timedelta(hours=1),
            sequence=1,
        )
        calendar, _text = read_feed(client, campus.pupil_x)
        event = events_by_uid(calendar)[f"{campus.lesson_x.key}@homeroom"]
        assert event.decoded("SEQUENCE") == 1

    def test_the_feed_holds_a_month_back_and_half_a_year_ahead(self, campus, client, frozen_now):
        inside = [
            LessonFactory.create(school_class=campus.class_x, starts_at=frozen_now + delta)
            for delta in (timedelta(days=-29), timedelta(days=179))
        ]
        outside = [
            LessonFactory.create(school_class=campus.class_x, starts_at=frozen_now + delta)
            for delta in (timedelta(days=-31), timedelta(days=181))
        ]
        uids = set(events_by_uid(read_feed(client, campus.pupil_x)[0]))
        assert {f"{lesson.key}@homeroom" for lesson in inside} <= uids
        assert not {f"{lesson.key}@homeroom" for lesson in outside} & uids

    def test_a_pupil_s_feed_holds_only_their_classes(self, campus, client):
        uids = set(events_by_uid(read_feed(client, campus.pupil_x)[0]))
        assert uids == {f"{campus.lesson_x.key}@homeroom"}

    def test_a_teacher_who_is_also_a_pupil_gets_both_kinds_of_lessons(self, campus, client):
        Membership.objects.create(user=campus.teacher_x, school=campus.school_a, role=Role.PUPIL)
        EnrollmentFactory.create(
            user=campus.teacher_x, school_class=campus.class_y, role=EnrollmentRole.PUPIL
        )
        uids = set(events_by_uid(read_feed(client, campus.teacher_x)[0]))
        assert uids == {f"{campus.lesson_x.key}@homeroom", f"{campus.lesson_y.key}@homeroom"}

    def test_a_school_admin_s_feed_holds_their_own_lessons_not_the_school_s(self, campus, client):
        assert events_by_uid(read_feed(client, campus.admin_a)[0]) == {}

    def test_schools_in_two_zones_get_a_vtimezone_each(self, campus, client, frozen_now):
        school = SchoolFactory.create(name="Ecole NY", time_zone="America/New_York")
        school_class = SchoolClassFactory.create(school=school)
        teacher = teacher_of(campus.class_x)
        Membership.objects.create(user=teacher, school=school, role=Role.TEACHER)
        EnrollmentFactory.create(
            user=teacher, school_class=school_class, role=EnrollmentRole.TEACHER
        )
        ny = LessonFactory.create(school_class=school_class, starts_at=frozen_now)
        calendar, _text = read_feed(client, teacher)
        assert {str(zone["TZID"]) for zone in calendar.walk("VTIMEZONE")} == {
            "America/New_York",
            "Europe/Paris",
        }
        event = events_by_uid(calendar)[f"{ny.key}@homeroom"]
        assert event["DTSTART"].params["TZID"] == "America/New_York"
        assert event.decoded("DTSTART") == frozen_now


class TestHeaders:
    def test_the_feed_is_text_calendar_in_utf_8_and_kept_private(self, campus, client):
        response = client.get(feed_url(campus.pupil_x))
        assert response["Content-Type"] == "text/calendar; charset=utf-8"
        assert response["Cache-Control"] == "private, max-age=300"
        assert response["X-Robots-Tag"] == "noindex, nofollow"
        assert response.content.startswith(b"BEGIN:VCALENDAR\r\n")

    def test_non_ascii_names_survive(self, campus, client):
        Lesson.objects.filter(pk=campus.lesson_x.pk).update(title="Géométrie à l'école — 5ᵉ")
        calendar, _text = read_feed(client, campus.pupil_x)
        event = events_by_uid(calendar)[f"{campus.lesson_x.key}@homeroom"]
        assert str(event["SUMMARY"]) == "Géométrie à l'école — 5ᵉ"

    def test_the_feed_answers_only_get(self, campus, client):
        assert client.post(feed_url(campus.pupil_x)).status_code == 405


class TestSecretUrl:
    @pytest.mark.parametrize(
        "token", ["nope", "a" * 43, "a" * 65, "%00" * 43, "../" + "a" * 43, "a" * 42 + "!"]
    )
    def test_an_unknown_or_malformed_token_answers_404(self, campus, client, token):
        assert client.get(f"/calendar/{token}.ics").status_code == 404

    def test_a_deactivated_user_s_feed_answers_404(self, campus, client):
        url = feed_url(campus.pupil_x)
        User.objects.filter(pk=campus.pupil_x.pk).update(is_active=False)
        assert client.get(url).status_code == 404

    def test_the_feed_of_someone_the_school_deactivated_answers_404(self, campus, client):
        url = feed_url(campus.pupil_x)
        Membership.objects.filter(user=campus.pupil_x).update(deactivated_at=timezone.now())
        assert client.get(url).status_code == 404

    def test_a_token_is_long_random_and_url_safe(self, campus):
        tokens = {
            services.calendar_feed_ensure(user=campus.person(p)).token
            for p in ("pupil_x", "teacher_x", "admin_a")
        }
        assert len(tokens) == 3
        for token in tokens:
            assert len(token) >= 43
            assert token.replace("-", "").replace("_", "").isalnum()

    def test_the_week_page_advertises_the_feed_with_an_absolute_url(self, campus, log_in):
        client = log_in(campus.pupil_x)
        response = client.get("/week/")
        feed = CalendarFeed.objects.get(user=campus.pupil_x)
        url = f"http://testserver/calendar/{feed.token}.ics"
        link = '<link rel="alternate" type="text/calendar" title="My lessons (calendar)" href="{}">'
        assertContains(response, link.format(url), html=True)
        assertContains(response, f'href="webcal://testserver/calendar/{feed.token}.ics"')
        assertContains(response, "Subscribe in your calendar app")
        assertContains(response, "Get a new link (the old one stops working)")
        client.get("/week/")
        assert CalendarFeed.objects.filter(user=campus.pupil_x).count() == 1
        assert CalendarFeed.objects.get(user=campus.pupil_x).token == feed.token

    def test_a_new_link_stops_the_old_one(self, campus, client, log_in):
        old = feed_url(campus.pupil_x)
        response = log_in(campus.pupil_x).post("/week/calendar/new-link/")
        assertRedirects(response, "/week/#calendar", fetch_redirect_response=False)
        page = client.get("/week/")
        assertContains(page, "The old one has stopped working")
        new = feed_url(campus.pupil_x)
        assert new != old
        assertContains(page, f"http://testserver{new}")
        assert CalendarFeed.objects.filter(user=campus.pupil_x).count() == 1
        # The feed needs no session: the token alone opens it, or not.
        client.logout()
        assert client.get(old).status_code == 404
        assert client.get(new).status_code == 200

    def test_a_new_link_before_any_link_makes_one(self, campus, log_in):
        log_in(campus.pupil_x).post("/week/calendar/new-link/")
        assert CalendarFeed.objects.filter(user=campus.pupil_x).count() == 1

    def test_renewing_needs_a_logged_in_post(self, campus, client, log_in):
        assertRedirects(
            client.post("/week/calendar/new-link/"),
            "/accounts/login/?next=/week/calendar/new-link/",
            fetch_redirect_response=False,
        )
        assert log_in(campus.pupil_x).get("/week/calendar/new-link/").status_code == 405

    def test_renewing_one_feed_leaves_the_others_alone(self, campus, client, log_in):
        other = feed_url(campus.teacher_x)
        log_in(campus.pupil_x).post("/week/calendar/new-link/")
        client.logout()
        assert client.get(other).status_code == 200


def test_a_pupil_added_later_sees_their_new_class_in_the_same_feed(campus, client):
    pupil = pupil_of(campus.class_y)
    url = feed_url(pupil)
    EnrollmentFactory.create(user=pupil, school_class=campus.class_x)
    response = client.get(url)
    assert f"UID:{campus.lesson_x.key}@homeroom".encode() in response.content
