"""Guardians read their children's week, read-only: this week by default, the weeks around it
by link, no Join button, and 404 for any pupil who is not theirs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from accounts.models import Membership, Role
from tests.factories import LessonFactory, guardian_of, member

pytestmark = pytest.mark.django_db


def week_url(campus, pupil=None, school=None) -> str:
    school = school or campus.school_a
    pupil = pupil or campus.pupil_x
    return f"/children/{school.pk}/{pupil.pk}/"


def test_a_guardian_sees_their_child_s_week_without_join_buttons(campus, log_in):
    response = log_in(campus.guardian_a).get(week_url(campus))
    assertContains(response, "Pia Xavier's week")
    assertContains(response, "Fractions")
    assertContains(response, "5X Maths")
    assertNotContains(response, "btn--join")
    assertNotContains(response, f"/lessons/{campus.lesson_x.key}/")
    # 9:25 UTC is 10:25 in Paris.
    assertContains(response, ">10:25</time>")


def test_prev_and_next_weeks_are_reachable(campus, log_in, frozen_now):
    LessonFactory.create(
        school_class=campus.class_x,
        title="Next week's lesson",
        starts_at=frozen_now + timedelta(days=7),
    )
    client = log_in(campus.guardian_a)
    this_week = client.get(week_url(campus))
    assertNotContains(this_week, "Next week&#x27;s lesson")
    assertContains(this_week, "?week=2025-03-17")
    assertContains(this_week, "?week=2025-03-03")
    next_week = client.get(week_url(campus), {"week": "2025-03-19"})
    assertContains(next_week, "Next week&#x27;s lesson")
    assertNotContains(next_week, "Fractions")
    assertContains(next_week, "This week")


@pytest.mark.parametrize("week", ["garbage", "2025-02-30", "9999-01-01", "%00"])
def test_a_bad_week_shows_this_week_never_a_500(campus, log_in, week):
    client = log_in(campus.guardian_a)
    client.raise_request_exception = False
    response = client.get(week_url(campus), {"week": week})
    assert response.status_code == 200
    assertContains(response, "Fractions")


@pytest.mark.parametrize("pupil", ["pupil_y", "pupil_z"])
def test_a_guardian_gets_404_for_a_pupil_who_is_not_theirs(campus, log_in, pupil):
    response = log_in(campus.guardian_a).get(week_url(campus, pupil=campus.person(pupil)))
    assert response.status_code == 404


@pytest.mark.parametrize("person", ["admin_a", "teacher_x", "pupil_x", "pupil_y", "admin_b"])
def test_nobody_but_the_guardian_reads_the_week(campus, log_in, person):
    assert log_in(campus.person(person)).get(week_url(campus)).status_code == 404


def test_a_guardianship_in_another_school_s_url_is_404(campus, log_in):
    assert (
        log_in(campus.guardian_a).get(week_url(campus, school=campus.school_b)).status_code == 404
    )


def test_a_deactivated_guardian_sees_nothing(campus, log_in):
    Membership.objects.filter(user=campus.guardian_a).update(
        deactivated_at=campus.lesson_x.starts_at
    )
    assert log_in(campus.guardian_a).get(week_url(campus)).status_code == 404
    assertNotContains(log_in(campus.guardian_a).get("/children/"), "Pia Xavier")


def test_anonymous_visitors_are_sent_to_log_in(campus, client):
    url = week_url(campus)
    assertRedirects(client.get(url), f"/accounts/login/?next={url}", fetch_redirect_response=False)
    assertRedirects(
        client.get("/children/"), "/accounts/login/?next=/children/", fetch_redirect_response=False
    )


def test_my_children_lists_each_ward_and_the_home_page_links_the_week(campus, log_in):
    second = member(campus.school_a, Role.PUPIL, given_name="Sam", family_name="Second")
    guardian = guardian_of(campus.pupil_x, second, school=campus.school_a)
    client = log_in(guardian)
    children = client.get("/children/")
    assertContains(children, week_url(campus))
    assertContains(children, week_url(campus, pupil=second))
    assertContains(client.get("/"), week_url(campus))
    assertContains(client.get("/"), 'data-testid="today"', count=0)
