"""Writes with consequences on the school's domain."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from classrooms.models import Lesson, LessonState


@transaction.atomic
def lessons_end_finished(*, now: datetime) -> int:
    """Mark every scheduled or live lesson whose end has passed as ended; return how many.

    Idempotent and safe to run from several workers at once: one UPDATE, filtered on state.
    """
    return Lesson.objects.filter(
        ends_at__lte=now, state__in=(LessonState.SCHEDULED, LessonState.LIVE)
    ).update(state=LessonState.ENDED)
