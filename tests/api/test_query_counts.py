"""Every API list costs a fixed number of queries, however many rows it shows: measured on the
campus, then again after ten times more classes, people, lessons and notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.conftest import World, client_for, notify
from tests.factories import (
    CourseFactory,
    EnrollmentFactory,
    LessonFactory,
    SchoolClassFactory,
    TermFactory,
    pupil_of,
)

# Session and user (2), the page's count and rows (2), plus what each list reads besides.
LISTS = {
    "/api/v1/schools/": 5,  # + the user's roles for `roles`
    "/api/v1/terms/": 4,
    "/api/v1/courses/": 4,
    "/api/v1/classes/": 4,
    "/api/v1/enrollments/": 4,
    "/api/v1/lessons/?from=2025-03-10&to=2025-03-31": 4,
    "/api/v1/series/": 4,
    "/api/v1/me/timetable/": 5,  # + the user's schools and their time zones
    "/api/v1/notifications/": 4,
}


def _grow(world: World, times: int = 10) -> None:
    """Ten times more of everything a list of school A shows to its admin and class X's teacher."""
    c = world.campus
    for n in range(times):
        school_class = SchoolClassFactory.create(
            school=c.school_a,
            term=TermFactory.create(school=c.school_a),
            course=CourseFactory.create(school=c.school_a),
        )
        EnrollmentFactory.create(school_class=school_class, user=c.teacher_x, role="teacher")
        pupil_of(school_class, c.class_x)
        for day in range(3):
            lesson = LessonFactory.create(
                school_class=school_class,
                starts_at=c.lesson_x.starts_at + timedelta(days=day + 1, hours=n % 5 + 1),
            )
            notify(c.teacher_x, c.school_a.pk, lesson, n * 10 + day)
            notify(c.admin_a, c.school_a.pk, lesson, n * 10 + day)


def _count(client, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response.data["count"]


@pytest.mark.django_db
@pytest.mark.parametrize("person", ["teacher_x", "admin_a"])
def test_lists_cost_a_fixed_number_of_queries_as_rows_grow(world: World, person: str):
    client = client_for(world.campus.person(person))
    before = {url: _count(client, url) for url in LISTS}
    _grow(world)
    after = {url: _count(client, url) for url in LISTS}
    for url, expected in LISTS.items():
        if person == "admin_a" and url == "/api/v1/me/timetable/":
            # An admin on no roster has an empty timetable: the page reads no rows.
            expected -= 1
        assert before[url][0] == after[url][0] == expected, url
    grown = [url for url in LISTS if after[url][1] > before[url][1]]
    # Series do not grow; everything else does, for at least one of the two people.
    assert len(grown) >= 6, grown


@pytest.mark.django_db
def test_a_lesson_list_page_costs_the_same_as_a_short_one(world, django_assert_num_queries):
    _grow(world)
    client = client_for(world.campus.admin_a)
    with django_assert_num_queries(LISTS["/api/v1/lessons/?from=2025-03-10&to=2025-03-31"]):
        response = client.get("/api/v1/lessons/?from=2025-03-10&to=2025-03-31&page_size=200")
    assert response.data["count"] > 30
