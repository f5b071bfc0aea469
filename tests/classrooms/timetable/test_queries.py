"""Every timetable page and the feed cost a fixed number of queries, however many lessons,
classes and pupils the school has: ten times more rows cost not one more query."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from classrooms.timetable import services
from tests.factories import Campus, grow_school

pytestmark = pytest.mark.django_db

# Every logged-in page: the session, the user, and the header's memberships (nav and bell).
PAGE = 3
# Per page: my week: the user's memberships, the lessons, their teachers, the feed's token;
# a class's week: the class, the viewer's roster role, the lessons, the teachers;
# the school's day: the admin check, the lessons, the teachers;
# the feed (no session): the token with its user, the lessons, the teachers.
QUERIES = {
    "my week, pupil": PAGE + 4,
    "my week, teacher": PAGE + 4,
    "class week": PAGE + 4,
    "school day": PAGE + 3,
    "calendar feed": 3,
}


def _request(campus: Campus, page: str, client) -> tuple[object, str]:
    if page == "my week, pupil":
        client.force_login(campus.pupil_x)
        return client, "/week/"
    if page == "my week, teacher":
        client.force_login(campus.teacher_x)
        return client, "/week/"
    if page == "class week":
        client.force_login(campus.teacher_x)
        return client, f"/classes/{campus.class_x.pk}/week/"
    if page == "school day":
        client.force_login(campus.admin_a)
        return client, f"/school/{campus.school_a.pk}/day/"
    feed = services.calendar_feed_ensure(user=campus.teacher_x)
    return client, f"/calendar/{feed.token}.ics"


def _count(client, path: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries.captured_queries), len(response.content)


@pytest.mark.parametrize("page", list(QUERIES))
def test_a_timetable_page_costs_a_fixed_number_of_queries_however_big_the_school(
    campus, client, django_assert_num_queries, page
):
    client, path = _request(campus, page, client)
    services.calendar_feed_ensure(user=campus.pupil_x)
    services.calendar_feed_ensure(user=campus.teacher_x)
    grow_school(campus, classes=2, pupils=3, lessons=3)
    with django_assert_num_queries(QUERIES[page]):
        small = client.get(path)
    grow_school(campus, classes=20, pupils=30, lessons=30)
    big_queries, big_size = _count(client, path)
    assert big_queries == QUERIES[page]
    # The new rows do show: the count held because the page is built in bulk.
    assert big_size > len(small.content)
