"""Weekly lesson series: the rule a teacher plans a term with.

A series says "this class, on these weekdays, at this local time, for this long, from this date to
that one". Its lessons are real `Lesson` rows generated from it (with python-dateutil's rrule), each
remembering its occurrence (`Lesson.series_start`). Local times stay local across daylight-saving
changes: the rule runs in the school's time zone and each occurrence is converted to UTC on its own.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from classrooms.models.school import School, SchoolClass

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class LessonSeries(models.Model):
    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="lesson_series")
    school_class = models.ForeignKey(
        SchoolClass, on_delete=models.CASCADE, related_name="lesson_series"
    )
    title = models.CharField(_("title"), max_length=200)
    # RFC 5545 weekday codes, comma-separated in week order: "MO,TH".
    weekdays = models.CharField(_("weekdays"), max_length=20)
    start_time = models.TimeField(_("local start time"))
    duration_minutes = models.PositiveSmallIntegerField(
        _("duration (minutes)"), validators=[MinValueValidator(5), MaxValueValidator(600)]
    )
    starts_on = models.DateField(_("first day"))
    ends_on = models.DateField(_("last day"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("lesson series")
        verbose_name_plural = _("lesson series")
        ordering = ("school_class", "starts_on")
        constraints = (
            models.CheckConstraint(
                condition=models.Q(ends_on__gte=models.F("starts_on")),
                name="series_ends_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(duration_minutes__gt=0), name="series_duration_positive"
            ),
        )

    def __str__(self) -> str:
        return f"{self.title} ({self.weekdays} {self.start_time:%H:%M})"

    @property
    def weekday_codes(self) -> tuple[str, ...]:
        return tuple(code for code in self.weekdays.split(",") if code)
