"""Who reaches the school admin's pages and actions: the school's active admins, and nobody else.

Anonymous visitors are sent to the login page; a teacher, a pupil or a guardian of the school, an
admin of another school and a deactivated admin all get the same 404 as for a school that does not
exist, on GET and on POST, and no POST of theirs changes anything.
"""

from __future__ import annotations

from typing import Any

import pytest
from pytest_django.asserts import assertRedirects

from accounts.models import Membership, Role
from classrooms.models import AuditEvent, Course, Term
from tests.factories import Campus

pytestmark = pytest.mark.django_db

# (method, path): {school}, {pupil}, {guardian}, {class}, {term}, {course} are school A's.
ROUTES: list[tuple[str, str]] = [
    ("get", "/school/{school}/"),
    ("get", "/school/{school}/people/"),
    ("get", "/school/{school}/people/new/"),
    ("post", "/school/{school}/people/new/"),
    ("post", "/school/{school}/people/invite-missing/"),
    ("get", "/school/{school}/people/{pupil}/"),
    ("get", "/school/{school}/people/{pupil}/edit/"),
    ("post", "/school/{school}/people/{pupil}/edit/"),
    ("post", "/school/{school}/people/{pupil}/deactivate/"),
    ("post", "/school/{school}/people/{pupil}/reactivate/"),
    ("post", "/school/{school}/people/{pupil}/invite/"),
    ("post", "/school/{school}/people/{guardian}/wards/"),
    ("post", "/school/{school}/people/{guardian}/wards/{pupil}/remove/"),
    ("get", "/school/{school}/classes/"),
    ("get", "/school/{school}/classes/new/"),
    ("post", "/school/{school}/classes/new/"),
    ("get", "/school/{school}/classes/{class}/"),
    ("get", "/school/{school}/classes/{class}/edit/"),
    ("post", "/school/{school}/classes/{class}/edit/"),
    ("post", "/school/{school}/classes/{class}/archive/"),
    ("post", "/school/{school}/classes/{class}/restore/"),
    ("post", "/school/{school}/classes/{class}/pupils/add/"),
    ("post", "/school/{school}/classes/{class}/teachers/add/"),
    ("post", "/school/{school}/classes/{class}/remove/"),
    ("get", "/school/{school}/terms/"),
    ("get", "/school/{school}/terms/new/"),
    ("post", "/school/{school}/terms/new/"),
    ("get", "/school/{school}/terms/{term}/edit/"),
    ("post", "/school/{school}/terms/{term}/edit/"),
    ("get", "/school/{school}/courses/new/"),
    ("post", "/school/{school}/courses/new/"),
    ("get", "/school/{school}/courses/{course}/edit/"),
    ("post", "/school/{school}/courses/{course}/edit/"),
    ("get", "/school/{school}/audit/"),
]
ROUTE_IDS = [f"{method.upper()} {path}" for method, path in ROUTES]

OUTSIDERS = ["teacher_x", "pupil_x", "guardian_a", "admin_b", "outsider", "inactive_pupil_x"]


def _path(campus: Campus, template: str) -> str:
    term = Term.objects.get(school=campus.school_a, classes=campus.class_x)
    course = Course.objects.get(school=campus.school_a, classes=campus.class_x)
    return template.format(
        school=campus.school_a.pk,
        pupil=campus.pupil_x.pk,
        guardian=campus.guardian_a.pk,
        **{"class": campus.class_x.pk},
        term=term.pk,
        course=course.pk,
    )


# A POST that would change something if it were let through.
POST_DATA: dict[str, Any] = {
    "email": "new@school.test",
    "given_name": "New",
    "roles": ["pupil"],
    "name": "Renamed",
    "users": [],
    "pupil": "",
    "title": "T",
    "code": "C",
    "starts_on": "2025-01-01",
    "ends_on": "2025-06-01",
}


def _call(client, method: str, path: str):
    if method == "post":
        return client.post(path, POST_DATA)
    return client.get(path)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
def test_an_anonymous_visitor_is_sent_to_log_in(campus, client, method, path):
    url = _path(campus, path)
    response = _call(client, method, url)
    assertRedirects(response, f"/accounts/login/?next={url}", fetch_redirect_response=False)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("person", OUTSIDERS)
def test_anyone_but_the_school_s_admin_gets_404_and_changes_nothing(
    campus, log_in, method, path, person
):
    events = AuditEvent.objects.count()
    response = _call(log_in(campus.person(person)), method, _path(campus, path))
    # A deactivated account's session logs nobody in: it is sent to the login page instead.
    assert response.status_code == (302 if person == "inactive_pupil_x" else 404)
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
def test_a_deactivated_admin_gets_404(campus, log_in, method, path):
    Membership.objects.filter(user=campus.admin_a, school=campus.school_a).update(
        deactivated_at=campus.lesson_x.starts_at
    )
    response = _call(log_in(campus.admin_a), method, _path(campus, path))
    assert response.status_code == 404


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
def test_the_school_s_admin_reaches_every_page_and_action(campus, log_in, method, path):
    response = _call(log_in(campus.admin_a), method, _path(campus, path))
    assert response.status_code in (200, 302)


def test_a_school_page_of_another_school_looks_like_a_missing_one(campus, log_in):
    client = log_in(campus.admin_a)
    foreign = client.get(f"/school/{campus.school_b.pk}/people/")
    missing = client.get("/school/999999/people/")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.content == missing.content


@pytest.mark.parametrize(
    "path",
    [
        "/school/{school}/people/{foreign_pupil}/",
        "/school/{school}/classes/{foreign_class}/",
        "/school/{school}/terms/{foreign_term}/edit/",
        "/school/{school}/courses/{foreign_course}/edit/",
    ],
)
def test_another_school_s_rows_are_404_under_the_admin_s_own_school(campus, log_in, path):
    url = path.format(
        school=campus.school_a.pk,
        foreign_pupil=campus.pupil_z.pk,
        foreign_class=campus.class_z.pk,
        foreign_term=campus.class_z.term_id,
        foreign_course=campus.class_z.course_id,
    )
    assert log_in(campus.admin_a).get(url).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/school/{school}/people/{pupil}/deactivate/",
        "/school/{school}/classes/{class}/archive/",
        "/school/{school}/people/new/",
    ],
)
def test_a_get_never_changes_anything(campus, log_in, path):
    events = AuditEvent.objects.count()
    response = log_in(campus.admin_a).get(_path(campus, path))
    assert response.status_code in (200, 405)
    assert AuditEvent.objects.count() == events


def test_every_change_needs_a_csrf_token(campus, client):
    client.handler.enforce_csrf_checks = True
    client.force_login(campus.admin_a)
    response = client.post(_path(campus, "/school/{school}/people/{pupil}/deactivate/"))
    assert response.status_code == 403
    assert not AuditEvent.objects.exists()


class TestSchoolsLink:
    def test_an_admin_of_one_school_goes_straight_to_its_dashboard(self, campus, log_in):
        response = log_in(campus.admin_a).get("/school/")
        assertRedirects(response, f"/school/{campus.school_a.pk}/", fetch_redirect_response=False)

    def test_an_admin_of_two_schools_chooses(self, campus, log_in):
        Membership.objects.create(user=campus.admin_a, school=campus.school_b, role=Role.ADMIN)
        response = log_in(campus.admin_a).get("/school/")
        assert response.status_code == 200
        assert b"Ecole A" in response.content
        assert b"Ecole B" in response.content

    @pytest.mark.parametrize("person", ["teacher_x", "pupil_x", "guardian_a"])
    def test_someone_who_runs_no_school_gets_404(self, campus, log_in, person):
        assert log_in(campus.person(person)).get("/school/").status_code == 404

    def test_the_nav_shows_school_to_admins_only(self, campus, log_in):
        assert b">School</a>" in log_in(campus.admin_a).get("/").content
        assert b">School</a>" not in log_in(campus.teacher_x).get("/").content

    def test_the_nav_shows_my_children_to_guardians_only(self, campus, log_in):
        assert b">My children</a>" in log_in(campus.guardian_a).get("/").content
        assert b">My children</a>" not in log_in(campus.pupil_x).get("/").content
