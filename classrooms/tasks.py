"""Celery tasks of the classrooms app; each calls one service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from classrooms import services


@shared_task(name="classrooms.lessons_end_finished")
def lessons_end_finished() -> int:
    """Periodic (Celery beat, every minute): lessons past their end are marked ended."""
    return services.lessons_end_finished(now=timezone.now())
