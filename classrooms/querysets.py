"""Reusable filters on classes, enrollments and lessons."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    # For the type arguments in quotes below; ruff does not read names inside those strings.
    from classrooms.models import Enrollment, Lesson, SchoolClass  # noqa: F401


class SchoolClassQuerySet(models.QuerySet["SchoolClass"]):
    def active(self) -> SchoolClassQuerySet:
        return self.filter(archived_at__isnull=True)

    def with_pupil_count(self) -> SchoolClassQuerySet:
        return self.annotate(
            pupil_count=models.Count("enrollments", filter=models.Q(enrollments__role="pupil"))
        )


class EnrollmentQuerySet(models.QuerySet["Enrollment"]):
    def teachers(self) -> EnrollmentQuerySet:
        return self.filter(role="teacher")

    def pupils(self) -> EnrollmentQuerySet:
        return self.filter(role="pupil")


class LessonQuerySet(models.QuerySet["Lesson"]):
    def overlapping(self, start: datetime, end: datetime) -> LessonQuerySet:
        """Lessons that are on at some moment in [start, end)."""
        return self.filter(starts_at__lt=end, ends_at__gt=start)

    def not_cancelled(self) -> LessonQuerySet:
        return self.exclude(state="cancelled")

    def upcoming(self, now: datetime) -> LessonQuerySet:
        """Lessons not yet over and not called off, soonest first."""
        return self.filter(ends_at__gt=now).exclude(state__in=("ended", "cancelled"))

    def for_display(self) -> LessonQuerySet:
        return self.select_related("school", "school_class", "school_class__course")
