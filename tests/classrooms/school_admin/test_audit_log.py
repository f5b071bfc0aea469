"""The audit log page: this school's events only, newest first, paginated, filtered by action,
actor and the school's days; times in the school's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pytest_django.asserts import assertContains, assertNotContains

from classrooms.audit import audit_record
from classrooms.models import AuditAction, AuditEvent
from classrooms.school_admin import services

pytestmark = pytest.mark.django_db


def audit_url(campus) -> str:
    return f"/school/{campus.school_a.pk}/audit/"


def test_an_admin_reads_their_school_s_events_and_never_another_school_s(campus, log_in):
    services.person_deactivate(school=campus.school_a, actor=campus.admin_a, user=campus.pupil_x)
    services.person_deactivate(school=campus.school_b, actor=campus.admin_b, user=campus.pupil_z)
    response = log_in(campus.admin_a).get(audit_url(campus))
    assertContains(response, "Person deactivated")
    assertContains(response, "Pia Xavier")
    assertNotContains(response, "Zoe Zed")
    other = log_in(campus.admin_b).get(f"/school/{campus.school_b.pk}/audit/")
    assertContains(other, "Zoe Zed")
    assertNotContains(other, "Pia Xavier")


def test_times_are_in_the_school_s_time_zone_newest_first(campus, log_in):
    for hour, label in ((8, "first"), (21, "second")):
        AuditEvent.objects.create(
            school=campus.school_a,
            action=AuditAction.CLASS_UPDATED,
            target_label=label,
            at=datetime(2025, 3, 10, hour, 0, tzinfo=UTC),
        )
    page = log_in(campus.admin_a).get(audit_url(campus)).content.decode()
    # 21:00 UTC on 10 March is 22:00 in Paris.
    assert "10 Mar 2025, 22:00" in page
    assert page.index("second") < page.index("first")


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ({"action": "class.archived"}, "late-night", "early"),
        ({"since": "2025-03-11"}, "late-night", "early"),
        # 23:30 UTC on the 10th is 00:30 on the 11th in Paris: the filter uses the school's days.
        ({"until": "2025-03-10"}, "early", "late-night"),
    ],
)
def test_filters_by_action_and_the_school_s_days(campus, log_in, query, shown, hidden):
    AuditEvent.objects.create(
        school=campus.school_a,
        action=AuditAction.CLASS_UPDATED,
        target_label="early",
        at=datetime(2025, 3, 9, 12, 0, tzinfo=UTC),
    )
    AuditEvent.objects.create(
        school=campus.school_a,
        action=AuditAction.CLASS_ARCHIVED,
        target_label="late-night",
        at=datetime(2025, 3, 10, 23, 30, tzinfo=UTC),
    )
    response = log_in(campus.admin_a).get(audit_url(campus), query)
    assertContains(response, shown)
    assertNotContains(response, hidden)


def test_filter_by_actor(campus, log_in):
    audit_record(
        school_id=campus.school_a.pk,
        actor_id=campus.admin_a.pk,
        action=AuditAction.PERSON_UPDATED,
        target_label="by-ada",
    )
    audit_record(
        school_id=campus.school_a.pk,
        actor_id=None,
        action=AuditAction.PERSON_UPDATED,
        target_label="by-system",
    )
    response = log_in(campus.admin_a).get(audit_url(campus), {"actor": campus.admin_a.pk})
    assertContains(response, "by-ada")
    assertNotContains(response, "by-system")


def test_an_actor_of_another_school_is_not_offered_and_ignored(campus, log_in):
    audit_record(
        school_id=campus.school_b.pk,
        actor_id=campus.admin_b.pk,
        action=AuditAction.PERSON_UPDATED,
        target_label="secret-b",
    )
    response = log_in(campus.admin_a).get(audit_url(campus), {"actor": campus.admin_b.pk})
    assert response.status_code == 200
    assertNotContains(response, "Bob Admin")
    assertNotContains(response, "secret-b")


def test_a_range_that_ends_before_it_starts_is_a_form_error(campus, log_in):
    response = log_in(campus.admin_a).get(
        audit_url(campus), {"since": "2025-03-12", "until": "2025-03-01"}
    )
    assertContains(response, "cannot come before its start")


def test_pages_cost_the_same_queries_however_many_events(campus, log_in, django_assert_num_queries):
    start = datetime(2025, 1, 1, tzinfo=UTC)
    AuditEvent.objects.bulk_create(
        AuditEvent(
            school=campus.school_a,
            actor=campus.admin_a if n % 2 else None,
            action=AuditAction.ENROLLMENT_ADDED,
            target_label=f"event {n}",
            at=start + timedelta(minutes=n),
            details={"user_id": n, "role": "pupil"},
        )
        for n in range(130)
    )
    client = log_in(campus.admin_a)
    # Session, user, nav, the school, the actors for the filter, the count, the page.
    with django_assert_num_queries(7):
        response = client.get(audit_url(campus), {"page": 2})
    assertContains(response, "Page 2 of 3")
    # Filtering by someone checks them among the actors too.
    with django_assert_num_queries(8):
        client.get(audit_url(campus), {"page": 3, "actor": campus.admin_a.pk})
