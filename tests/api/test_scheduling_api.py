"""Scheduling over the API: teachers and admins create, move, rename and cancel lessons and
series through the scheduling services; clashes answer 409 naming the other lesson; a class id
in a body is checked against what the caller may schedule without telling foreign from missing."""

from __future__ import annotations

from typing import Any

import pytest

from classrooms.models import Lesson, LessonState
from tests.api.conftest import World, client_for

NOT_SCHEDULABLE = {"school_class": ["There is no class with this id that you may schedule."]}


def _lesson(world: World, **overrides: Any) -> dict[str, Any]:
    body = {
        "school_class": world.campus.class_x.pk,
        "title": "Extra help",
        "starts_at": "2025-03-13T07:00:00Z",
        "ends_at": "2025-03-13T08:00:00Z",
    }
    return {**body, **overrides}


@pytest.mark.django_db
def test_a_teacher_schedules_a_lesson_of_their_class(world: World):
    response = client_for(world.campus.teacher_x).post("/api/v1/lessons/", _lesson(world))
    assert response.status_code == 201, response.data
    assert response.data["title"] == "Extra help"
    assert response.data["starts_at"] == "2025-03-13T07:00:00Z"
    assert response.data["school_class"]["id"] == world.campus.class_x.pk
    assert Lesson.objects.filter(key=response.data["key"], school=world.campus.school_a).exists()


@pytest.mark.django_db
def test_a_school_admin_schedules_any_class_of_the_school(world: World):
    body = _lesson(world, school_class=world.campus.class_y.pk)
    assert client_for(world.campus.admin_a).post("/api/v1/lessons/", body).status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("person", "class_name"),
    [
        pytest.param("teacher_y", "class_x", id="another teacher's class"),
        pytest.param("teacher_x", "class_z", id="a class of another school"),
        pytest.param("admin_b", "class_x", id="another school's admin"),
    ],
)
def test_a_class_out_of_reach_answers_like_a_missing_one(world: World, person, class_name):
    c = world.campus
    client = client_for(c.person(person))
    class_id = getattr(c, class_name).pk
    out_of_reach = client.post("/api/v1/lessons/", _lesson(world, school_class=class_id))
    missing = client.post("/api/v1/lessons/", _lesson(world, school_class=999999))
    assert out_of_reach.status_code == missing.status_code == 400
    assert out_of_reach.data == missing.data == NOT_SCHEDULABLE
    assert not Lesson.objects.filter(title="Extra help").exists()


@pytest.mark.django_db
def test_pupils_and_guardians_may_not_schedule(world: World):
    for person in ("pupil_x", "guardian_a"):
        response = client_for(world.campus.person(person)).post("/api/v1/lessons/", _lesson(world))
        assert response.status_code == 403


@pytest.mark.django_db
def test_a_clash_answers_409_naming_the_other_lesson(world: World):
    body = _lesson(world, starts_at="2025-03-14T09:30:00Z", ends_at="2025-03-14T10:30:00Z")
    response = client_for(world.campus.teacher_x).post("/api/v1/lessons/", body)
    assert response.status_code == 409
    assert response.data["detail"].code == "clash"
    assert "Decimals" in str(response.data["detail"])
    assert not Lesson.objects.filter(title="Extra help").exists()


@pytest.mark.django_db
def test_the_services_rules_answer_400_by_field(world: World):
    client = client_for(world.campus.teacher_x)
    past = client.post(
        "/api/v1/lessons/",
        _lesson(world, starts_at="2025-03-11T07:00:00Z", ends_at="2025-03-11T08:00:00Z"),
    )
    assert past.status_code == 400
    assert "starts_at" in past.data
    backwards = client.post("/api/v1/lessons/", _lesson(world, ends_at="2025-03-13T06:00:00Z"))
    assert backwards.status_code == 400
    assert "ends_at" in backwards.data
    shapeless = client.post("/api/v1/lessons/", {"title": "x"})
    assert shapeless.status_code == 400
    assert {"school_class", "starts_at", "ends_at"} <= shapeless.data.keys()


@pytest.mark.django_db
def test_a_teacher_moves_and_renames_a_lesson(world: World):
    client = client_for(world.campus.teacher_x)
    url = f"/api/v1/lessons/{world.later_x.key}/"
    moved = client.patch(url, {"starts_at": "2025-03-14T12:00:00Z"})
    assert moved.status_code == 200, moved.data
    assert (moved.data["starts_at"], moved.data["ends_at"]) == (
        "2025-03-14T12:00:00Z",
        "2025-03-14T13:00:00Z",
    )
    renamed = client.put(
        url,
        {
            "title": "Percentages",
            "starts_at": "2025-03-14T12:00:00Z",
            "ends_at": "2025-03-14T13:00:00Z",
        },
    )
    assert renamed.status_code == 200
    assert renamed.data["title"] == "Percentages"
    assert renamed.data["key"] == world.later_x.key
    incomplete_put = client.put(url, {"title": "Only a title"})
    assert incomplete_put.status_code == 400


@pytest.mark.django_db
def test_moving_onto_another_lesson_answers_409(world: World):
    # The series' Thursday lesson runs 13:00-13:55 UTC on 13 March.
    response = client_for(world.campus.admin_a).patch(
        f"/api/v1/lessons/{world.later_x.key}/",
        {"starts_at": "2025-03-13T13:30:00Z", "ends_at": "2025-03-13T14:30:00Z"},
    )
    assert response.status_code == 409
    assert "Weekly practice" in str(response.data["detail"])


@pytest.mark.django_db
def test_a_lesson_out_of_reach_cannot_be_changed_and_looks_missing(world: World):
    c = world.campus
    for person in ("teacher_y", "admin_b"):
        client = client_for(c.person(person))
        foreign = client.patch(f"/api/v1/lessons/{world.later_x.key}/", {"title": "Mine now"})
        missing = client.patch("/api/v1/lessons/AAAAAAAAAAAAAAAAAAAAAA/", {"title": "Mine now"})
        assert foreign.status_code == missing.status_code == 404
        assert foreign.data == missing.data
    world.later_x.refresh_from_db()
    assert world.later_x.title == "Decimals"


@pytest.mark.django_db
def test_cancelling_a_lesson_keeps_it_listed_as_cancelled(world: World):
    client = client_for(world.campus.teacher_x)
    url = f"/api/v1/lessons/{world.later_x.key}/cancel/"
    response = client.post(url)
    assert response.status_code == 200
    assert response.data["state"] == "cancelled"
    world.later_x.refresh_from_db()
    assert world.later_x.state == LessonState.CANCELLED
    again = client.post(url)
    assert again.status_code == 400
    assert again.data == {"non_field_errors": ["This lesson is cancelled."]}


@pytest.mark.django_db
def test_a_lesson_under_way_cannot_be_changed(world: World):
    response = client_for(world.campus.teacher_x).post(
        f"/api/v1/lessons/{world.campus.lesson_x.key}/cancel/"
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_teacher_creates_a_weekly_series_with_its_lessons(world: World):
    body = {
        "school_class": world.campus.class_x.pk,
        "title": "Tuesday drill",
        "weekdays": ["TU"],
        "start_time": "08:00",
        "duration_minutes": 45,
        "starts_on": "2025-03-18",
        "ends_on": "2025-04-08",
    }
    response = client_for(world.campus.teacher_x).post("/api/v1/series/", body, format="json")
    assert response.status_code == 201, response.data
    assert response.data["weekdays"] == ["TU"]
    lessons = Lesson.objects.filter(series_id=response.data["id"]).order_by("starts_at")
    assert [lesson.starts_at.isoformat() for lesson in lessons] == [
        "2025-03-18T07:00:00+00:00",
        "2025-03-25T07:00:00+00:00",
        # Paris moves to summer time on 30 March: 08:00 local stays 08:00 local.
        "2025-04-01T06:00:00+00:00",
        "2025-04-08T06:00:00+00:00",
    ]


@pytest.mark.django_db
def test_a_series_that_clashes_answers_409_and_writes_nothing(world: World):
    body = {
        "school_class": world.campus.class_x.pk,
        "title": "Friday clash",
        "weekdays": ["FR"],
        "start_time": "10:30",
        "duration_minutes": 30,
        "starts_on": "2025-03-14",
        "ends_on": "2025-03-28",
    }
    response = client_for(world.campus.teacher_x).post("/api/v1/series/", body, format="json")
    assert response.status_code == 409
    assert "Decimals" in str(response.data["detail"])
    assert not Lesson.objects.filter(title="Friday clash").exists()


@pytest.mark.django_db
def test_a_series_is_changed_and_ended_from_a_day_on(world: World):
    client = client_for(world.campus.teacher_x)
    series = world.series_x
    changed = client.post(
        f"/api/v1/series/{series.pk}/update-from/",
        {"from_date": "2025-03-24", "start_time": "15:00"},
        format="json",
    )
    assert changed.status_code == 200, changed.data
    assert changed.data["start_time"] == "15:00:00"
    cancelled = client.post(
        f"/api/v1/series/{changed.data['id']}/cancel-from/", {"from_date": "2025-04-14"}
    )
    assert cancelled.status_code == 200
    assert cancelled.data == {"cancelled": 5}
    in_the_past = client.post(
        f"/api/v1/series/{series.pk}/cancel-from/", {"from_date": "2025-03-01"}
    )
    assert in_the_past.status_code == 400
    assert "from_date" in in_the_past.data


@pytest.mark.django_db
def test_another_schools_series_looks_missing(world: World):
    client = client_for(world.campus.admin_b)
    foreign = client.post(
        f"/api/v1/series/{world.series_x.pk}/cancel-from/", {"from_date": "2025-03-20"}
    )
    missing = client.post("/api/v1/series/999999/cancel-from/", {"from_date": "2025-03-20"})
    assert foreign.status_code == missing.status_code == 404
    assert foreign.data == missing.data
