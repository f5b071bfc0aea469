"""Writes with consequences on the school's domain."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from django.db import transaction

from classrooms.models import Lesson, LessonState
from media_relay.api import lesson_close


@transaction.atomic
def lessons_end_finished(*, now: datetime) -> int:
    """Mark every scheduled or live lesson whose end has passed as ended; return how many.

    Idempotent and safe to run from several workers at once: rows are locked and the UPDATE is
    filtered on state. Rooms still open for those lessons are closed once this commits, so
    nobody stays connected to a lesson the timetable says is over.
    """
    finished = Lesson.objects.select_for_update().filter(
        ends_at__lte=now, state__in=(LessonState.SCHEDULED, LessonState.LIVE)
    )
    keys = list(finished.values_list("key", flat=True))
    ended = Lesson.objects.filter(key__in=keys).update(state=LessonState.ENDED)
    for key in keys:
        transaction.on_commit(partial(lesson_close, lesson_key=key))
    return ended
