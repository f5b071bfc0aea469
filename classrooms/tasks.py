"""Celery tasks of the classrooms app; each calls one service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from classrooms import services
from classrooms.notifications import services as notification_services
from classrooms.oneroster import services as roster_services


@shared_task(name="classrooms.lessons_end_finished")
def lessons_end_finished() -> int:
    """Periodic (Celery beat, every minute): lessons past their end are marked ended."""
    return services.lessons_end_finished(now=timezone.now())


@shared_task(name="classrooms.reminders_send")
def reminders_send() -> int:
    """Periodic (Celery beat, every minute): remind rostered people of lessons starting soon."""
    return notification_services.reminders_send(now=timezone.now())


@shared_task(name="classrooms.lesson_change_notify")
def lesson_change_notify(lesson_id: int, kind: str) -> int:
    """Tell a lesson's roster it was cancelled or moved (queued by scheduling on commit)."""
    return notification_services.lesson_change_notify(lesson_id=lesson_id, kind=kind)


@shared_task(name="classrooms.roster_import_validate")
def roster_import_validate_task(roster_import_id: int) -> None:
    """Check an uploaded roster against its school (queued by `roster_import_create`)."""
    roster_services.roster_import_validate(roster_import_id=roster_import_id)
