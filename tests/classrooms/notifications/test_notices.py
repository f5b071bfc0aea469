"""A cancelled or moved lesson sends a notice instead of a reminder, once per change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from classrooms.models import LessonState, Notification, NotificationKind
from classrooms.notifications import services
from classrooms.tasks import lesson_change_notify as lesson_change_notify_task
from tests.classrooms.notifications.conftest import Soon

pytestmark = pytest.mark.django_db


def cancel(soon: Soon) -> None:
    soon.lesson.state = LessonState.CANCELLED
    soon.lesson.sequence += 1
    soon.lesson.save()


def move(soon: Soon, by: timedelta) -> None:
    soon.lesson.starts_at += by
    soon.lesson.ends_at += by
    soon.lesson.sequence += 1
    soon.lesson.save()


def test_a_cancelled_lesson_s_roster_is_told_once_and_never_reminded(soon: Soon, frozen_now):
    cancel(soon)
    assert lesson_change_notify_task.apply(args=(soon.lesson.pk, "cancelled")).get() == 3
    note = Notification.objects.get(user=soon.teacher)
    assert note.kind == NotificationKind.CANCELLED
    assert note.dedupe_key == f"cancelled:{soon.lesson.pk}:1"
    assert note.title == "Cancelled: Fractions"
    assert "10:38" in note.body
    assert "will not take place" in note.body
    assert services.lesson_change_notify(lesson_id=soon.lesson.pk, kind="cancelled") == 0
    assert services.reminders_send(now=frozen_now) == 0
    assert Notification.objects.count() == 3
    assert [m.subject for m in mail.outbox] == ["Cancelled: Fractions"] * 3


def test_a_moved_lesson_s_roster_is_told_its_new_time(soon: Soon, frozen_now):
    move(soon, timedelta(days=1, hours=1))
    assert services.lesson_change_notify(lesson_id=soon.lesson.pk, kind="moved") == 3
    note = Notification.objects.get(user=soon.pupils[0])
    assert note.kind == NotificationKind.MOVED
    assert note.title == "Moved: Fractions"
    assert note.body == "5A Maths · now Thursday 13 March, 11:38\N{EN DASH}12:33 (Europe/Paris)"
    assert note.url == f"/lessons/{soon.lesson.key}/"


def test_each_move_is_a_new_notice(soon: Soon, frozen_now):
    move(soon, timedelta(hours=1))
    services.lesson_change_notify(lesson_id=soon.lesson.pk, kind="moved")
    move(soon, timedelta(hours=1))
    assert services.lesson_change_notify(lesson_id=soon.lesson.pk, kind="moved") == 3
    assert Notification.objects.filter(kind=NotificationKind.MOVED).count() == 6


def test_a_stale_or_pointless_notice_does_nothing(soon: Soon, frozen_now):
    """A cancel notice for a lesson that is not cancelled, a move notice for a cancelled one, a
    notice for a lesson that is over or gone."""
    assert services.lesson_change_notify(lesson_id=soon.lesson.pk, kind="cancelled") == 0
    cancel(soon)
    assert services.lesson_change_notify(lesson_id=soon.lesson.pk, kind="moved") == 0
    assert services.lesson_change_notify(lesson_id=10**9, kind="cancelled") == 0
    soon.lesson.starts_at = frozen_now - timedelta(hours=2)
    soon.lesson.ends_at = frozen_now - timedelta(hours=1)
    soon.lesson.save()
    assert services.lesson_change_notify(lesson_id=soon.lesson.pk, kind="cancelled") == 0
    assert not Notification.objects.exists()


def test_an_unknown_kind_is_refused(soon: Soon):
    with pytest.raises(ValueError, match="not a lesson change"):
        services.lesson_change_notify(lesson_id=soon.lesson.pk, kind="reminder")
