"""Reading the school over the API: what each role sees, in which shape, and that nothing from
another school or outside the user's roster shows, not even as "exists but forbidden"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from accounts.models import User
from tests.api.conftest import World, client_for
from tests.factories import EnrollmentFactory, LessonFactory


def _results(user, url: str) -> list[dict[str, Any]]:
    response = client_for(user).get(url)
    assert response.status_code == 200, response.data
    results: list[dict[str, Any]] = response.data["results"]
    return results


def _names(rows: list[dict[str, Any]], field: str = "name") -> set[str]:
    return {row[field] for row in rows}


@pytest.mark.django_db
def test_schools_are_the_users_own_with_their_roles(world: World):
    c = world.campus
    assert _results(c.pupil_x, "/api/v1/schools/") == [
        {
            "id": c.school_a.pk,
            "name": "Ecole A",
            "slug": "ecole-a",
            "time_zone": "Europe/Paris",
            "roles": ["pupil"],
        }
    ]
    assert _names(_results(c.admin_b, "/api/v1/schools/")) == {"Ecole B"}
    assert _results(c.outsider, "/api/v1/schools/") == []


@pytest.mark.django_db
def test_terms_and_courses_are_those_of_the_users_schools_guardians_included(world: World):
    c = world.campus
    for url, field in (("/api/v1/terms/", "id"), ("/api/v1/courses/", "id")):
        a_rows = {row[field] for row in _results(c.guardian_a, url)}
        b_rows = {row[field] for row in _results(c.pupil_z, url)}
        assert a_rows
        assert b_rows
        assert not a_rows & b_rows
    term_z = c.class_z.term_id
    assert client_for(c.pupil_x).get(f"/api/v1/terms/{term_z}/").status_code == 404
    assert client_for(c.pupil_z).get(f"/api/v1/terms/{term_z}/").status_code == 200
    assert _results(c.admin_a, f"/api/v1/terms/?school={c.school_b.pk}") == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("person", "classes"),
    [
        pytest.param("admin_a", {"5X Maths", "5Y French"}, id="an admin sees every class"),
        pytest.param("teacher_x", {"5X Maths"}, id="a teacher sees the classes they teach"),
        pytest.param("pupil_y", {"5Y French"}, id="a pupil sees their classes"),
        pytest.param("guardian_a", set(), id="a guardian sees no class"),
        pytest.param("teacher_z", {"5Z Maths"}, id="school B's teacher sees school B only"),
        pytest.param("leaver_x", set(), id="a leaver's old enrollment grants nothing"),
        pytest.param("outsider", set(), id="a user of no school sees nothing"),
    ],
)
def test_classes_per_role(world: World, person: str, classes: set[str]):
    assert _names(_results(world.campus.person(person), "/api/v1/classes/")) == classes


@pytest.mark.django_db
def test_a_class_shows_its_term_and_course(world: World):
    c = world.campus
    row = client_for(c.pupil_x).get(f"/api/v1/classes/{c.class_x.pk}/").data
    assert row["name"] == "5X Maths"
    assert row["school"] == c.school_a.pk
    assert row["term"] == {"id": c.class_x.term.pk, "name": c.class_x.term.name}
    assert row["course"]["code"] == c.class_x.course.code


@pytest.mark.django_db
def test_a_deactivated_user_is_not_authenticated(world: World):
    response = client_for(world.campus.inactive_pupil_x).get("/api/v1/classes/")
    assert response.status_code == 401


@pytest.mark.django_db
def test_teachers_and_admins_read_whole_rosters_pupils_only_their_own_row(world: World):
    c = world.campus
    roster_x = {c.teacher_x.pk, c.pupil_x.pk, c.inactive_pupil_x.pk, c.leaver_x.pk}
    roster_y = {c.teacher_y.pk, c.pupil_y.pk}

    def users(person: User) -> set[int]:
        return {row["user"]["id"] for row in _results(person, "/api/v1/enrollments/")}

    assert users(c.teacher_x) == roster_x
    assert users(c.admin_a) == roster_x | roster_y
    assert users(c.pupil_x) == {c.pupil_x.pk}
    assert users(c.guardian_a) == set()
    assert users(c.teacher_z) == {c.teacher_z.pk, c.pupil_z.pk}
    only_y = _results(c.admin_a, f"/api/v1/enrollments/?school_class={c.class_y.pk}&role=pupil")
    assert [row["user"]["id"] for row in only_y] == [c.pupil_y.pk]


@pytest.mark.django_db
def test_a_pupil_cannot_read_a_classmates_enrollment(world: World):
    c = world.campus
    classmate = EnrollmentFactory.create(school_class=c.class_x)
    assert client_for(c.pupil_x).get(f"/api/v1/enrollments/{classmate.pk}/").status_code == 404
    assert client_for(c.teacher_x).get(f"/api/v1/enrollments/{classmate.pk}/").status_code == 200


@pytest.mark.django_db
def test_a_lesson_is_shown_by_key_with_its_class_course_times_and_join_link(world: World):
    c = world.campus
    lesson = c.lesson_x
    response = client_for(c.pupil_x).get(f"/api/v1/lessons/{lesson.key}/")
    assert response.status_code == 200
    assert response.data == {
        "key": lesson.key,
        "title": "Fractions",
        "school": c.school_a.pk,
        "school_class": {"id": c.class_x.pk, "name": "5X Maths"},
        "course": {
            "id": c.class_x.course.pk,
            "title": c.class_x.course.title,
            "code": c.class_x.course.code,
            "color": "",
        },
        "starts_at": "2025-03-12T09:25:00Z",
        "ends_at": "2025-03-12T10:20:00Z",
        "time_zone": "Europe/Paris",
        "state": "scheduled",
        "joinable": True,
        "join_url": f"http://testserver/lessons/{lesson.key}/",
        "series": None,
        "is_exception": False,
    }
    assert "id" not in response.data


@pytest.mark.django_db
def test_lessons_list_by_date_range_defaults_to_a_week_from_today(world: World):
    c = world.campus
    default = _names(_results(c.teacher_x, "/api/v1/lessons/"), "title")
    assert default == {"Fractions", "Decimals", "Weekly practice"}
    today = _results(c.teacher_x, "/api/v1/lessons/?from=2025-03-12&to=2025-03-12")
    assert _names(today, "title") == {"Fractions"}
    morning = _results(
        c.teacher_x, "/api/v1/lessons/?from=2025-03-14T08:00:00Z&to=2025-03-14T09:30:00"
    )
    assert _names(morning, "title") == {"Decimals"}
    series_only = _results(c.teacher_x, "/api/v1/lessons/?from=2025-03-01&to=2025-05-31")
    assert len([r for r in series_only if r["series"] == world.series_x.pk]) == 14


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param("from=yesterday", "from", id="not a date"),
        pytest.param("from=2025-03-12&to=2025-03-11", "to", id="ends before it starts"),
        pytest.param("from=2025-01-01&to=2025-06-01", "to", id="more than 92 days"),
        pytest.param("school_class=x", "school_class", id="a class id that is no number"),
        pytest.param("state=postponed", "state", id="an unknown state"),
    ],
)
def test_a_bad_lesson_query_answers_400_naming_the_parameter(world: World, query, field):
    response = client_for(world.campus.pupil_x).get(f"/api/v1/lessons/?{query}")
    assert response.status_code == 400
    assert field in response.data


@pytest.mark.django_db
def test_foreign_and_missing_ids_answer_the_same_404(world: World):
    c = world.campus
    client = client_for(c.teacher_x)
    pairs = [
        (f"/api/v1/classes/{c.class_z.pk}/", "/api/v1/classes/999999/"),
        (f"/api/v1/classes/{c.class_y.pk}/", "/api/v1/classes/999999/"),
        (f"/api/v1/lessons/{c.lesson_z.key}/", "/api/v1/lessons/AAAAAAAAAAAAAAAAAAAAAA/"),
        (f"/api/v1/schools/{c.school_b.pk}/", "/api/v1/schools/999999/"),
        (f"/api/v1/series/{world.series_z.pk}/", "/api/v1/series/999999/"),
        (
            f"/api/v1/notifications/{world.notifications['pupil_a'].pk}/",
            "/api/v1/notifications/999999/",
        ),
    ]
    for foreign, missing in pairs:
        foreign_response, missing_response = client.get(foreign), client.get(missing)
        assert foreign_response.status_code == missing_response.status_code == 404, foreign
        assert foreign_response.data == missing_response.data
    assert client.get("/api/v1/lessons/not%00a%20key/").status_code == 404


@pytest.mark.django_db
def test_my_timetable_holds_the_weeks_lessons_as_pupil_and_teacher(world: World):
    c = world.campus
    pupil_week = _results(c.pupil_x, "/api/v1/me/timetable/")
    assert [(row["title"], row["role"]) for row in pupil_week] == [
        ("Fractions", "pupil"),
        ("Weekly practice", "pupil"),
        ("Decimals", "pupil"),
    ]
    assert pupil_week[0]["joinable"] is True
    assert pupil_week[0]["join_url"].startswith("http://testserver/lessons/")
    assert {row["role"] for row in _results(c.teacher_x, "/api/v1/me/timetable/")} == {"teacher"}
    next_week = _results(c.pupil_x, "/api/v1/me/timetable/?week=2025-03-19")
    assert [row["starts_at"] for row in next_week] == [
        "2025-03-17T13:00:00Z",
        "2025-03-20T13:00:00Z",
    ]
    assert _results(c.guardian_a, "/api/v1/me/timetable/") == []
    assert _results(c.admin_a, "/api/v1/me/timetable/") == []
    bad = client_for(c.pupil_x).get("/api/v1/me/timetable/?week=next")
    assert bad.status_code == 400
    assert "week" in bad.data


@pytest.mark.django_db
def test_the_timetable_week_runs_from_monday_midnight_in_the_schools_zone(world: World):
    c = world.campus
    # 23:30 UTC on Sunday 16 March is already Monday 17 in Paris: next week's, not this week's.
    sunday_night = c.lesson_x.starts_at.replace(day=16, hour=23, minute=30)
    LessonFactory.create(
        school_class=c.class_x,
        title="Midnight",
        starts_at=sunday_night,
        ends_at=sunday_night + timedelta(minutes=30),
    )
    this_week = _names(_results(c.pupil_x, "/api/v1/me/timetable/?week=2025-03-12"), "title")
    next_week = _names(_results(c.pupil_x, "/api/v1/me/timetable/?week=2025-03-17"), "title")
    assert "Midnight" not in this_week
    assert "Midnight" in next_week


@pytest.mark.django_db
def test_series_are_read_by_the_classes_roster(world: World):
    c = world.campus
    rows = _results(c.pupil_x, "/api/v1/series/")
    assert [row["id"] for row in rows] == [world.series_x.pk]
    assert rows[0]["weekdays"] == ["MO", "TH"]
    assert rows[0]["start_time"] == "14:00:00"
    assert _results(c.pupil_y, "/api/v1/series/") == []


@pytest.mark.django_db
def test_notifications_are_my_own_and_can_be_marked_read(world: World):
    c = world.campus
    mine = world.notifications["pupil_a"]
    rows = _results(c.pupil_x, "/api/v1/notifications/")
    assert [row["id"] for row in rows] == [mine.pk]
    assert rows[0]["lesson"] == c.lesson_x.key
    assert rows[0]["read_at"] is None
    client = client_for(c.pupil_x)
    assert client.post(f"/api/v1/notifications/{mine.pk}/read/").data["read_at"] is not None
    assert _results(c.pupil_x, "/api/v1/notifications/?unread=true") == []
    assert len(_results(c.pupil_x, "/api/v1/notifications/?unread=false")) == 1
    others = world.notifications["teacher_a"]
    assert client.post(f"/api/v1/notifications/{others.pk}/read/").status_code == 404
    teacher = client_for(c.teacher_x)
    assert teacher.post("/api/v1/notifications/read-all/").data == {"marked": 1}
    assert teacher.post("/api/v1/notifications/read-all/").data == {"marked": 0}
    others.refresh_from_db()
    assert others.read_at is not None
