"""Reminders: each rostered teacher and pupil is told once, in the school's time, by the bell and
by email, within their school's lead time and before the lesson starts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core import mail

from classrooms.models import LessonState, Notification, NotificationKind
from classrooms.notifications import services
from classrooms.tasks import reminders_send as reminders_send_task
from tests.classrooms.notifications.conftest import Soon, lesson_in
from tests.factories import SchoolClassFactory, SchoolFactory, pupil_of

pytestmark = pytest.mark.django_db


def recipients(**filters: object) -> set[int]:
    return set(Notification.objects.filter(**filters).values_list("user_id", flat=True))


def test_the_roster_s_teacher_and_pupils_are_reminded_and_no_one_else(soon: Soon, frozen_now):
    assert services.reminders_send(now=frozen_now) == 3
    assert recipients(lesson=soon.lesson, kind=NotificationKind.REMINDER) == soon.rostered
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        u.email for u in (soon.teacher, *soon.pupils)
    )


def test_a_reminder_says_what_and_when_in_the_school_s_time_and_links_to_the_lesson(
    soon: Soon, frozen_now
):
    services.reminders_send(now=frozen_now)
    note = Notification.objects.get(user=soon.pupils[0])
    # 09:38 UTC is 10:38 in Paris (winter time).
    assert note.title == "Fractions starts at 10:38"
    assert note.body == "5A Maths · Wednesday 12 March, 10:38\N{EN DASH}11:33 (Europe/Paris)"
    assert note.url == f"/lessons/{soon.lesson.key}/"
    assert note.dedupe_key == f"reminder:{soon.lesson.pk}:20250312T0938Z"
    assert note.emailed_at == frozen_now
    assert note.read_at is None
    email = next(m for m in mail.outbox if m.to == [soon.pupils[0].email])
    assert email.subject == note.title
    assert f"http://127.0.0.1:8000/lessons/{soon.lesson.key}/" in email.body


def test_running_the_scan_again_notifies_nobody_twice(soon: Soon, frozen_now, time_machine):
    services.reminders_send(now=frozen_now)
    time_machine.shift(timedelta(minutes=1))
    assert services.reminders_send(now=frozen_now + timedelta(minutes=1)) == 0
    assert Notification.objects.count() == 3
    assert len(mail.outbox) == 3


def test_a_worker_that_died_after_inserting_leaves_the_emails_to_the_next_scan(
    soon: Soon, frozen_now
):
    """The dead worker ran only the insert step; the next scan emails each person once."""
    services.reminders_create(now=frozen_now)
    assert len(mail.outbox) == 0
    assert Notification.objects.filter(emailed_at__isnull=True).count() == 3
    assert services.reminders_send(now=frozen_now) == 3
    assert services.reminders_send(now=frozen_now) == 0
    assert len(mail.outbox) == 3
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()


def test_a_failed_email_is_retried_by_the_next_scan(soon: Soon, frozen_now, monkeypatch):
    def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("SMTP down")

    monkeypatch.setattr(services, "send_mail", broken)
    assert services.reminders_send(now=frozen_now) == 0
    assert Notification.objects.filter(emailed_at__isnull=True).count() == 3
    monkeypatch.undo()
    assert services.reminders_send(now=frozen_now) == 3
    assert len(mail.outbox) == 3


@pytest.mark.parametrize(
    ("lead", "minutes", "reminded"),
    [
        (10, 10, True),
        (10, 11, False),
        (30, 25, True),
        (30, 31, False),
        (10, 0, False),  # starting now: too late
        (10, -1, False),  # started a minute ago
    ],
)
def test_each_school_s_lead_time_decides_when_its_lessons_are_reminded(
    frozen_now, lead, minutes, reminded
):
    school = SchoolFactory.create(reminder_lead_minutes=lead)
    school_class = SchoolClassFactory.create(school=school)
    pupil = pupil_of(school_class)
    lesson_in(school_class, minutes)
    services.reminders_send(now=frozen_now)
    assert Notification.objects.filter(user=pupil).exists() is reminded


def test_two_schools_with_different_lead_times_are_scanned_together(frozen_now):
    near = SchoolClassFactory.create(school=SchoolFactory.create(reminder_lead_minutes=5))
    far = SchoolClassFactory.create(school=SchoolFactory.create(reminder_lead_minutes=60))
    pupil_of(near)
    far_pupil = pupil_of(far)
    lesson_in(near, 20)
    lesson_in(far, 20)
    services.reminders_send(now=frozen_now)
    assert recipients() == {far_pupil.pk}


@pytest.mark.parametrize("state", [LessonState.CANCELLED, LessonState.ENDED])
def test_a_cancelled_or_ended_lesson_is_not_reminded(soon: Soon, frozen_now, state):
    soon.lesson.state = state
    soon.lesson.save()
    assert services.reminders_send(now=frozen_now) == 0
    assert not Notification.objects.exists()


def test_a_lesson_opened_early_is_still_reminded(soon: Soon, frozen_now):
    soon.lesson.state = LessonState.LIVE
    soon.lesson.save()
    assert services.reminders_send(now=frozen_now) == 3


def test_a_pending_reminder_of_a_lesson_cancelled_since_is_never_emailed(soon: Soon, frozen_now):
    services.reminders_create(now=frozen_now)
    soon.lesson.state = LessonState.CANCELLED
    soon.lesson.save()
    assert services.reminders_send(now=frozen_now) == 0
    assert mail.outbox == []


def test_a_moved_lesson_is_reminded_again_at_its_new_time(
    soon: Soon, frozen_now: datetime, time_machine
):
    services.reminders_send(now=frozen_now)
    lesson = soon.lesson
    lesson.starts_at += timedelta(hours=2)
    lesson.ends_at += timedelta(hours=2)
    lesson.sequence += 1
    lesson.save()
    # A scan before the new lead window reminds nobody; one inside it reminds everyone again.
    assert services.reminders_send(now=frozen_now + timedelta(minutes=1)) == 0
    later = lesson.starts_at - timedelta(minutes=5)
    time_machine.move_to(later, tick=False)
    assert services.reminders_send(now=later) == 3
    assert Notification.objects.filter(kind=NotificationKind.REMINDER).count() == 6


def test_a_new_title_alone_reminds_nobody_twice(soon: Soon, frozen_now):
    services.reminders_send(now=frozen_now)
    soon.lesson.title = "Fractions, part 2"
    soon.lesson.sequence += 1
    soon.lesson.save()
    assert services.reminders_send(now=frozen_now) == 0


def test_the_periodic_task_runs_the_scan(soon: Soon, frozen_now):
    assert reminders_send_task.apply().get() == 3
    assert len(mail.outbox) == 3
