"""The scheduling pages: who reaches them, the forms, and refusals shown on the form.

A class's teachers and its school's admins schedule from the class page; pupils, guardians,
teachers of other classes and people of other schools get a 404 on every page and every POST.
"""

from __future__ import annotations

from datetime import date, time
from typing import Any

import pytest
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from classrooms.models import Lesson, LessonSeries
from classrooms.scheduling import services
from tests.classrooms.scheduling.conftest import paris
from tests.factories import Campus

pytestmark = pytest.mark.django_db

SCHEDULERS = ["teacher_x", "admin_a"]
OUTSIDERS = ["pupil_x", "guardian_a", "teacher_y", "admin_b", "teacher_z", "leaver_x", "outsider"]


def a_series(campus: Campus) -> LessonSeries:
    return services.series_create(
        actor=campus.teacher_x,
        school_class=campus.class_x,
        title="Maths",
        weekdays=["MO", "TH"],
        start_time=time(9, 0),
        duration_minutes=55,
        starts_on=date(2025, 3, 17),
        ends_on=date(2025, 3, 30),
    )


def a_lesson(campus: Campus, **fields: Any) -> Lesson:
    fields.setdefault("title", "Fractions")
    fields.setdefault("starts_at", paris(2025, 3, 18, 10, 0))
    fields.setdefault("ends_at", paris(2025, 3, 18, 10, 55))
    return services.lesson_schedule(actor=campus.teacher_x, school_class=campus.class_x, **fields)


def urls(campus: Campus, lesson: Lesson, series: LessonSeries) -> list[str]:
    class_id = campus.class_x.pk
    return [
        f"/classes/{class_id}/schedule/",
        f"/classes/{class_id}/schedule/lessons/new/",
        f"/classes/{class_id}/schedule/series/new/",
        f"/schedule/lessons/{lesson.key}/edit/",
        f"/schedule/lessons/{lesson.key}/cancel/",
        f"/schedule/series/{series.pk}/edit/",
        f"/schedule/series/{series.pk}/cancel/",
    ]


class TestAccess:
    @pytest.mark.parametrize("person", SCHEDULERS)
    def test_the_class_teacher_and_the_school_admin_open_every_page(self, campus, log_in, person):
        client = log_in(campus.person(person))
        for url in urls(campus, a_lesson(campus), a_series(campus)):
            assert client.get(url).status_code == 200, url

    @pytest.mark.parametrize("person", OUTSIDERS)
    def test_everyone_else_gets_a_404_and_changes_nothing(self, campus, log_in, person):
        client = log_in(campus.person(person))
        lesson, series = a_lesson(campus), a_series(campus)
        schedule_page, *forms = urls(campus, lesson, series)
        assert client.get(schedule_page).status_code == 404
        for url in forms:
            assert client.get(url).status_code == 404, url
            assert client.post(url, {"from_date": "2025-03-20", "title": "x"}).status_code == 404
        lesson.refresh_from_db()
        assert (lesson.state, lesson.title) == ("scheduled", "Fractions")
        assert series.lessons.filter(state="scheduled").count() == 4

    def test_an_anonymous_visitor_is_sent_to_log_in(self, campus, client):
        url = f"/classes/{campus.class_x.pk}/schedule/"
        assertRedirects(
            client.get(url), f"/accounts/login/?next={url}", fetch_redirect_response=False
        )

    def test_an_unknown_lesson_key_or_series_is_a_404(self, campus, log_in):
        client = log_in(campus.admin_a)
        assert client.get("/schedule/lessons/not-a-key/edit/").status_code == 404
        assert client.get("/schedule/lessons/" + "a" * 22 + "/cancel/").status_code == 404
        assert client.get("/schedule/series/999999/edit/").status_code == 404

    @pytest.mark.parametrize(
        ("person", "shown"),
        [("teacher_x", True), ("admin_a", True), ("pupil_x", False), ("admin_b", False)],
    )
    def test_the_class_page_links_to_the_schedule_for_those_who_schedule(
        self, campus, log_in, person, shown
    ):
        client = log_in(campus.person(person))
        response = client.get(f"/classes/{campus.class_x.pk}/")
        link = f"/classes/{campus.class_x.pk}/schedule/"
        if response.status_code == 404:
            assert not shown
            return
        (assertContains if shown else assertNotContains)(response, link)


class TestSchedulePage:
    def test_it_lists_series_and_lessons_to_come_in_the_school_zone(self, campus, log_in):
        a_series(campus)
        a_lesson(campus)
        response = log_in(campus.teacher_x).get(f"/classes/{campus.class_x.pk}/schedule/")
        assertContains(response, "Monday, Thursday, 09:00, 55 minutes")
        assertContains(response, "Tuesday 18 March")
        assertContains(response, "10:00")
        assertContains(response, "Fractions")

    def test_its_queries_do_not_grow_with_the_lessons(
        self, campus, log_in, django_assert_max_num_queries
    ):
        client = log_in(campus.teacher_x)
        a_series(campus)
        with django_assert_max_num_queries(10):
            client.get(f"/classes/{campus.class_x.pk}/schedule/")
        services.series_create(
            actor=campus.teacher_x,
            school_class=campus.class_x,
            title="More",
            weekdays=["TU", "WE", "FR"],
            start_time=time(14, 0),
            duration_minutes=55,
            starts_on=date(2025, 3, 13),
            ends_on=date(2025, 5, 30),
        )
        with django_assert_max_num_queries(10):
            client.get(f"/classes/{campus.class_x.pk}/schedule/")


class TestForms:
    def test_scheduling_a_lesson_takes_local_day_time_and_duration(self, campus, log_in):
        response = log_in(campus.teacher_x).post(
            f"/classes/{campus.class_x.pk}/schedule/lessons/new/",
            {
                "title": "Decimals",
                "day": "2025-03-19",
                "start_time": "14:00",
                "duration_minutes": 45,
            },
        )
        assertRedirects(response, f"/classes/{campus.class_x.pk}/schedule/")
        lesson = Lesson.objects.get(title="Decimals")
        assert (lesson.starts_at, lesson.ends_at) == (
            paris(2025, 3, 19, 14, 0),
            paris(2025, 3, 19, 14, 45),
        )

    def test_an_end_time_sets_the_length(self, campus, log_in):
        log_in(campus.admin_a).post(
            f"/classes/{campus.class_x.pk}/schedule/lessons/new/",
            {"title": "Decimals", "day": "2025-03-19", "start_time": "14:00", "end_time": "15:30"},
        )
        assert Lesson.objects.get(title="Decimals").ends_at == paris(2025, 3, 19, 15, 30)

    def test_a_clash_is_shown_on_the_form(self, campus, log_in):
        a_lesson(campus)
        response = log_in(campus.teacher_x).post(
            f"/classes/{campus.class_x.pk}/schedule/lessons/new/",
            {
                "title": "Decimals",
                "day": "2025-03-18",
                "start_time": "10:30",
                "duration_minutes": 30,
            },
        )
        assert response.status_code == 200
        assertContains(response, "5X Maths already has &quot;Fractions&quot; on Tuesday 18 March")
        assert not Lesson.objects.filter(title="Decimals").exists()

    @pytest.mark.parametrize(
        ("data", "error"),
        [
            (
                {"title": "A", "day": "2025-03-19", "start_time": "14:00", "end_time": "13:00"},
                "A lesson must end after it starts.",
            ),
            (
                {"title": "A", "day": "2025-03-10", "start_time": "14:00", "duration_minutes": 30},
                "A lesson cannot start in the past.",
            ),
            (
                {"title": "A", "day": "2025-03-19", "start_time": "14:00"},
                "Give a duration or an end time.",
            ),
            ({"title": "", "day": "", "start_time": ""}, "This field is required."),
        ],
    )
    def test_bad_input_is_shown_on_the_form(self, campus, log_in, data, error):
        response = log_in(campus.teacher_x).post(
            f"/classes/{campus.class_x.pk}/schedule/lessons/new/", data
        )
        assertContains(response, error)

    def test_creating_a_series_from_the_form(self, campus, log_in):
        response = log_in(campus.teacher_x).post(
            f"/classes/{campus.class_x.pk}/schedule/series/new/",
            {
                "title": "Maths",
                "weekdays": ["MO", "TH"],
                "start_time": "09:00",
                "duration_minutes": 55,
                "starts_on": "2025-03-17",
                "ends_on": "2025-03-30",
            },
            follow=True,
        )
        assertContains(response, "The series was created with 4 lessons.")
        assert LessonSeries.objects.get().lessons.count() == 4

    def test_a_series_without_weekdays_is_refused_on_the_form(self, campus, log_in):
        response = log_in(campus.teacher_x).post(
            f"/classes/{campus.class_x.pk}/schedule/series/new/",
            {
                "title": "Maths",
                "start_time": "09:00",
                "duration_minutes": 55,
                "starts_on": "2025-03-17",
            },
        )
        assertContains(response, "Choose at least one day of the week.")
        assert not LessonSeries.objects.exists()

    def test_moving_one_lesson_from_its_form(self, campus, log_in):
        lesson = a_lesson(campus)
        response = log_in(campus.teacher_x).post(
            f"/schedule/lessons/{lesson.key}/edit/",
            {
                "title": "Fractions",
                "day": "2025-03-20",
                "start_time": "11:00",
                "duration_minutes": 55,
            },
        )
        assertRedirects(response, f"/classes/{campus.class_x.pk}/schedule/")
        lesson.refresh_from_db()
        assert lesson.starts_at == paris(2025, 3, 20, 11, 0)

    def test_cancelling_one_lesson_asks_first_then_cancels(self, campus, log_in):
        lesson = a_lesson(campus)
        client = log_in(campus.admin_a)
        assertContains(client.get(f"/schedule/lessons/{lesson.key}/cancel/"), "Cancel the lesson")
        lesson.refresh_from_db()
        assert lesson.state == "scheduled"
        client.post(f"/schedule/lessons/{lesson.key}/cancel/")
        lesson.refresh_from_db()
        assert lesson.state == "cancelled"

    def test_cancelling_a_lesson_under_way_is_refused_on_the_page(self, campus, log_in):
        response = log_in(campus.teacher_x).post(f"/schedule/lessons/{campus.lesson_x.key}/cancel/")
        assertContains(response, "This lesson has started")

    def test_changing_a_series_from_a_day_on(self, campus, log_in):
        series = a_series(campus)
        response = log_in(campus.teacher_x).post(
            f"/schedule/series/{series.pk}/edit/",
            {
                "from_date": "2025-03-24",
                "title": "Maths",
                "weekdays": ["MO", "TH"],
                "start_time": "10:00",
                "duration_minutes": 55,
                "ends_on": "2025-03-30",
            },
        )
        assertRedirects(response, f"/classes/{campus.class_x.pk}/schedule/")
        assert LessonSeries.objects.count() == 2
        assert Lesson.objects.filter(starts_at=paris(2025, 3, 24, 10, 0)).exists()

    def test_a_series_change_from_the_past_is_refused_on_the_form(self, campus, log_in):
        series = a_series(campus)
        response = log_in(campus.teacher_x).post(
            f"/schedule/series/{series.pk}/edit/",
            {
                "from_date": "2025-03-01",
                "title": "Maths",
                "weekdays": ["MO"],
                "start_time": "10:00",
                "duration_minutes": 55,
                "ends_on": "2025-03-30",
            },
        )
        assertContains(response, "Choose today or a later day.")

    def test_ending_a_series_early(self, campus, log_in):
        series = a_series(campus)
        response = log_in(campus.admin_a).post(
            f"/schedule/series/{series.pk}/cancel/", {"from_date": "2025-03-24"}, follow=True
        )
        assertContains(response, "2 lessons were cancelled.")
        series.refresh_from_db()
        assert series.ends_on == date(2025, 3, 23)
