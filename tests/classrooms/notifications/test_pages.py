"""The bell on every page, the notifications page, and marking read (POST only, own only)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from accounts.models import User
from classrooms.models import Notification, NotificationKind
from tests.factories import SchoolClassFactory, pupil_of

pytestmark = pytest.mark.django_db


_keys = itertools.count()


def notify(user: User, n: int, *, read: bool = False) -> list[Notification]:
    school = user.memberships.get().school
    return [
        Notification.objects.create(
            school=school,
            user=user,
            kind=NotificationKind.REMINDER,
            dedupe_key=f"test:{next(_keys)}",
            title=f"Lesson {i} starts soon",
            url="/lessons/abc/",
            read_at=timezone.now() if read else None,
        )
        for i in range(n)
    ]


@pytest.fixture
def pupil(db, frozen_now) -> User:
    return pupil_of(SchoolClassFactory.create())


@pytest.fixture
def logged_in(client, pupil):
    client.force_login(pupil)
    return client


def queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def test_the_bell_shows_the_unread_count_accessibly(logged_in, pupil):
    notify(pupil, 3)
    notify(pupil, 2, read=True)
    response = logged_in.get("/")
    assertContains(response, 'aria-label="Notifications, 3 unread"')
    assertContains(response, '<span class="bell__count" data-bell-count>3</span>', html=False)
    assertContains(response, "classrooms/bell.js")


def test_the_bell_with_nothing_unread_hides_its_badge(logged_in):
    response = logged_in.get("/")
    assertContains(response, 'aria-label="Notifications, 0 unread"')
    assertContains(response, "data-bell-count hidden")


def test_the_bell_costs_no_query_of_its_own(logged_in, pupil):
    """The count rides on the nav's memberships query: pages cost the same with or without."""
    before = queries(logged_in, "/")
    notify(pupil, 5)
    assert queries(logged_in, "/") == before


def test_anonymous_pages_have_no_bell(client, db):
    response = client.get("/accounts/login/")
    assertNotContains(response, "data-bell")


def test_the_notifications_page_lists_only_mine_newest_first(logged_in, pupil, time_machine):
    notify(pupil, 1)
    time_machine.shift(timedelta(minutes=1))
    notify(pupil_of(SchoolClassFactory.create()), 1)
    notes = notify(pupil, 2)
    response = logged_in.get("/notifications/")
    assertContains(response, "Lesson 0 starts soon", count=2)  # both of mine, not the other's
    body = response.content.decode()
    assert body.index(f'data-notification="{notes[-1].pk}"') < body.index(
        f'data-notification="{notes[0].pk}"'
    )


def test_the_bell_panel_is_a_fragment(logged_in, pupil):
    notify(pupil, 1)
    response = logged_in.get("/notifications/panel/")
    assertContains(response, "Lesson 0 starts soon")
    assertContains(response, "Mark all read")
    assertNotContains(response, "<html")


def test_opening_a_notification_marks_it_read_and_goes_to_the_lesson(logged_in, pupil):
    (note,) = notify(pupil, 1)
    response = logged_in.post(f"/notifications/{note.pk}/open/")
    assertRedirects(response, "/lessons/abc/", status_code=303, fetch_redirect_response=False)
    note.refresh_from_db()
    assert note.read_at is not None


def test_reading_is_post_only(logged_in, pupil):
    (note,) = notify(pupil, 1)
    assert logged_in.get(f"/notifications/{note.pk}/open/").status_code == 405
    assert logged_in.get("/notifications/read-all/").status_code == 405
    note.refresh_from_db()
    assert note.read_at is None


def test_someone_else_s_notification_answers_404_and_stays_unread(logged_in):
    (theirs,) = notify(pupil_of(SchoolClassFactory.create()), 1)
    assert logged_in.post(f"/notifications/{theirs.pk}/open/").status_code == 404
    assert logged_in.post("/notifications/999999/open/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_all_read_reads_only_mine(logged_in, pupil):
    notify(pupil, 3)
    (theirs,) = notify(pupil_of(SchoolClassFactory.create()), 1)
    response = logged_in.post("/notifications/read-all/", {"next": "/"})
    assertRedirects(response, "/", status_code=303, fetch_redirect_response=False)
    assert not Notification.objects.filter(user=pupil, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None
    json = logged_in.post("/notifications/read-all/", headers={"Accept": "application/json"})
    assert json.json() == {"unread": 0}


def test_mark_all_read_never_redirects_off_site(logged_in):
    response = logged_in.post("/notifications/read-all/", {"next": "https://evil.test/"})
    assertRedirects(response, "/notifications/", status_code=303, fetch_redirect_response=False)


@pytest.mark.parametrize("path", ["/notifications/", "/notifications/panel/"])
def test_anonymous_visitors_are_sent_to_log_in(client, db, path):
    assert client.get(path).status_code == 302
