"""Celery tasks of the classrooms app; each calls one service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from classrooms import services
from classrooms.oneroster import services as roster_services


@shared_task(name="classrooms.lessons_end_finished")
def lessons_end_finished() -> int:
    """Periodic (Celery beat, every minute): lessons past their end are marked ended."""
    return services.lessons_end_finished(now=timezone.now())


@shared_task(name="classrooms.roster_import_validate")
def roster_import_validate_task(roster_import_id: int) -> None:
    """Check an uploaded roster against its school (queued by `roster_import_create`)."""
    roster_services.roster_import_validate(roster_import_id=roster_import_id)


@shared_task(name="classrooms.roster_import_apply")
def roster_import_apply_task(roster_import_id: int, actor_id: int | None) -> None:
    """Apply a validated roster in the background (a large school takes a while)."""
    roster_services.roster_import_apply_by_id(roster_import_id=roster_import_id, actor_id=actor_id)
