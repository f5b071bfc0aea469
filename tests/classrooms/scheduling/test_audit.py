"""Every scheduling change is in the school's audit log, with who made it."""

from __future__ import annotations

from datetime import date, time

import pytest

from classrooms.models import AuditAction, AuditEvent
from classrooms.scheduling import services
from tests.classrooms.scheduling.conftest import paris

pytestmark = pytest.mark.django_db


def actions(school) -> list[str]:
    return list(
        AuditEvent.objects.filter(school=school).order_by("id").values_list("action", flat=True)
    )


def test_scheduling_moving_and_cancelling_a_lesson_is_recorded(campus, notices):
    lesson = services.lesson_schedule(
        actor=campus.teacher_x,
        school_class=campus.class_x,
        title="Fractions",
        starts_at=paris(2025, 3, 18, 10, 0),
        ends_at=paris(2025, 3, 18, 10, 55),
    )
    services.lesson_update(actor=campus.teacher_x, lesson=lesson, starts_at=paris(2025, 3, 18, 14))
    services.lesson_cancel(actor=campus.admin_a, lesson=lesson)

    assert actions(campus.school_a) == [
        AuditAction.LESSON_SCHEDULED,
        AuditAction.LESSON_UPDATED,
        AuditAction.LESSON_CANCELLED,
    ]
    events = list(AuditEvent.objects.filter(school=campus.school_a).order_by("id"))
    assert [event.actor for event in events] == [
        campus.teacher_x,
        campus.teacher_x,
        campus.admin_a,
    ]
    assert {event.target_id for event in events} == {lesson.key}
    assert events[1].details["starts_at"] == paris(2025, 3, 18, 14).isoformat()
    assert not AuditEvent.objects.filter(school=campus.school_b).exists()


def test_a_series_its_change_and_its_early_end_are_recorded(campus, notices):
    series = services.series_create(
        actor=campus.teacher_x,
        school_class=campus.class_x,
        title="Algebra",
        weekdays=["MO", "TH"],
        start_time=time(8, 0),
        duration_minutes=55,
        starts_on=date(2025, 3, 17),
        ends_on=date(2025, 4, 30),
    )
    changed = services.series_update_from(
        actor=campus.teacher_x, series=series, from_date=date(2025, 4, 1), start_time=time(8, 30)
    )
    services.series_cancel_from(actor=campus.teacher_x, series=changed, from_date=date(2025, 4, 20))

    assert actions(campus.school_a) == [
        AuditAction.SERIES_CREATED,
        AuditAction.SERIES_UPDATED,
        AuditAction.SERIES_CANCELLED,
    ]
    created = AuditEvent.objects.get(action=AuditAction.SERIES_CREATED)
    assert created.details["weekdays"] == "MO,TH"
    assert created.details["start_time"] == "08:00"
    assert int(created.details["lessons"]) > 0


def test_a_refused_change_records_nothing(campus, notices):
    with pytest.raises(Exception):  # noqa: B017, PT011 -- any refusal: the point is the log
        services.lesson_schedule(
            actor=campus.teacher_x,
            school_class=campus.class_x,
            title="Backwards",
            starts_at=paris(2025, 3, 18, 11, 0),
            ends_at=paris(2025, 3, 18, 10, 0),
        )
    assert not AuditEvent.objects.exists()
