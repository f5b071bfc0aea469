"""Schools, terms, courses, classes, enrollments and lessons.

Vocabulary follows OneRoster (a term is an academic session, a class is a group taught a course).
Every row carries its school, so that every read can be scoped to the requesting user's school
with one filter; services keep a row's school equal to its parents' school. Times are stored in UTC
and shown in the school's time zone.
"""

from __future__ import annotations

import re
import secrets
import zoneinfo
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from classrooms.querysets import EnrollmentQuerySet, LessonQuerySet, SchoolClassQuerySet


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


LESSON_KEY_RE = re.compile(r"[A-Za-z0-9_-]{16,32}")


def new_lesson_key() -> str:
    """An unguessable key for a lesson's URLs: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


def is_lesson_key(value: str) -> bool:
    """Could this be a lesson key? Anything else is refused before it reaches the database,
    which may reject it loudly (PostgreSQL refuses NUL bytes in text)."""
    return LESSON_KEY_RE.fullmatch(value) is not None


class School(models.Model):
    """A school and its policies. Everything else belongs to exactly one school."""

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("short name"), max_length=64, unique=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Paris", validators=[validate_time_zone]
    )
    # Policies: how live lessons run in this school.
    lobby_until_teacher = models.BooleanField(
        _("pupils wait in a lobby until a teacher is present"), default=True
    )
    pupils_start_muted = models.BooleanField(_("pupils join with microphone off"), default=True)
    pupils_start_camera_off = models.BooleanField(_("pupils join with camera off"), default=True)
    pause_pupils_without_teacher = models.BooleanField(
        _("stop forwarding pupils' media while no teacher is present"), default=True
    )
    recording_allowed = models.BooleanField(_("lessons may be recorded"), default=False)
    late_after_minutes = models.PositiveSmallIntegerField(
        _("a pupil is late after (minutes)"), default=5, validators=[MaxValueValidator(120)]
    )
    left_early_minutes = models.PositiveSmallIntegerField(
        _("a pupil left early when leaving more than (minutes) before the end"),
        default=5,
        validators=[MaxValueValidator(120)],
    )
    reconnect_grace_seconds = models.PositiveSmallIntegerField(
        _("reconnects within (seconds) do not split a presence"),
        default=30,
        validators=[MinValueValidator(0), MaxValueValidator(600)],
    )
    org_sourced_id = models.CharField(
        _("OneRoster org sourcedId"),
        max_length=255,
        blank=True,
        help_text=_("Set by the first roster import; later bundles must carry the same org."),
    )
    reminder_lead_minutes = models.PositiveSmallIntegerField(
        _("remind people (minutes) before a lesson"),
        default=10,
        validators=[MaxValueValidator(1440)],
    )

    class Meta:
        verbose_name = _("school")
        verbose_name_plural = _("schools")
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Term(models.Model):
    """An academic session: a school year, a semester, a trimester."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="terms")
    name = models.CharField(_("name"), max_length=200)
    starts_on = models.DateField(_("first day"))
    ends_on = models.DateField(_("last day"))
    sourced_id = models.CharField(_("OneRoster sourcedId"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("term")
        verbose_name_plural = _("terms")
        ordering = ("school", "starts_on")
        constraints = (
            models.CheckConstraint(
                condition=models.Q(ends_on__gte=models.F("starts_on")), name="term_ends_after_start"
            ),
            models.UniqueConstraint(fields=("school", "name"), name="term_name_unique"),
            models.UniqueConstraint(
                fields=("school", "sourced_id"),
                condition=~models.Q(sourced_id=""),
                name="term_sourced_id_unique",
            ),
        )

    def __str__(self) -> str:
        return self.name


class Course(models.Model):
    """A subject as a school teaches it: "Mathematics, year 5"."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="courses")
    title = models.CharField(_("title"), max_length=200)
    code = models.CharField(_("code"), max_length=64)
    sourced_id = models.CharField(_("OneRoster sourcedId"), max_length=255, blank=True)
    color = models.CharField(
        _("colour"),
        max_length=7,
        blank=True,
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("A colour like #1f6f5c."))],
        help_text=_("How the timetable shows this course's lessons; empty picks one."),
    )

    class Meta:
        verbose_name = _("course")
        verbose_name_plural = _("courses")
        ordering = ("school", "title")
        constraints = (
            models.UniqueConstraint(fields=("school", "code"), name="course_code_unique"),
            models.UniqueConstraint(
                fields=("school", "sourced_id"),
                condition=~models.Q(sourced_id=""),
                name="course_sourced_id_unique",
            ),
        )

    def __str__(self) -> str:
        return self.title


class SchoolClass(models.Model):
    """A group of pupils taught a course in a term by one or more teachers ("5B Maths")."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="classes")
    term = models.ForeignKey(Term, on_delete=models.PROTECT, related_name="classes")
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="classes")
    name = models.CharField(_("name"), max_length=200)
    sourced_id = models.CharField(_("OneRoster sourcedId"), max_length=255, blank=True)
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True)

    objects = SchoolClassQuerySet.as_manager()

    class Meta:
        verbose_name = _("class")
        verbose_name_plural = _("classes")
        ordering = ("school", "name")
        constraints = (
            models.UniqueConstraint(fields=("school", "term", "name"), name="class_name_unique"),
            models.UniqueConstraint(
                fields=("school", "sourced_id"),
                condition=~models.Q(sourced_id=""),
                name="class_sourced_id_unique",
            ),
        )

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        for parent in ("term", "course"):
            parent_id = getattr(self, f"{parent}_id")
            if parent_id is None:
                continue
            if getattr(self, parent).school_id != self.school_id:
                raise ValidationError({parent: _("This belongs to another school.")})


class EnrollmentRole(models.TextChoices):
    TEACHER = "teacher", _("Teacher")
    PUPIL = "pupil", _("Pupil")


class Enrollment(models.Model):
    """A user on a class's roster, as one of its teachers or as a pupil."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="enrollments")
    school_class = models.ForeignKey(
        SchoolClass, on_delete=models.CASCADE, related_name="enrollments"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments"
    )
    role = models.CharField(_("role"), max_length=16, choices=EnrollmentRole.choices)
    sourced_id = models.CharField(_("OneRoster sourcedId"), max_length=255, blank=True)

    objects = EnrollmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("enrollment")
        verbose_name_plural = _("enrollments")
        constraints = (
            # One role per person per class: a teacher is not also a pupil of their own class.
            models.UniqueConstraint(fields=("school_class", "user"), name="enrollment_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=EnrollmentRole.values), name="enrollment_role_valid"
            ),
        )
        indexes = (models.Index(fields=("user", "role")),)

    def __str__(self) -> str:
        return f"{self.user_id} {self.role} in {self.school_class_id}"

    def clean(self) -> None:
        if self.school_class_id is not None and self.school_class.school_id != self.school_id:
            raise ValidationError({"school_class": _("This class belongs to another school.")})


class LessonState(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    LIVE = "live", _("Live")
    ENDED = "ended", _("Ended")
    CANCELLED = "cancelled", _("Cancelled")


class Lesson(models.Model):
    """One scheduled live session of a class, reached by an unguessable key."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="lessons")
    school_class = models.ForeignKey(SchoolClass, on_delete=models.CASCADE, related_name="lessons")
    title = models.CharField(_("title"), max_length=200)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    state = models.CharField(
        _("state"), max_length=16, choices=LessonState.choices, default=LessonState.SCHEDULED
    )
    key = models.CharField(max_length=32, unique=True, default=new_lesson_key, editable=False)
    # A lesson of a weekly series remembers which occurrence it is (its start as the series
    # planned it), so that regenerating the series never duplicates it, and whether it was moved
    # or edited on its own (`is_exception`), so that a change to the series leaves it as it is.
    series = models.ForeignKey(
        "classrooms.LessonSeries",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="lessons",
    )
    series_start = models.DateTimeField(null=True, blank=True)
    is_exception = models.BooleanField(default=False)
    # RFC 5545 SEQUENCE: bumped on every change a calendar must pick up (time, title, state).
    sequence = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LessonQuerySet.as_manager()

    class Meta:
        verbose_name = _("lesson")
        verbose_name_plural = _("lessons")
        ordering = ("starts_at",)
        constraints = (
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="lesson_ends_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=LessonState.values), name="lesson_state_valid"
            ),
            models.UniqueConstraint(
                fields=("series", "series_start"),
                condition=models.Q(series__isnull=False),
                name="lesson_series_occurrence_unique",
            ),
        )
        indexes = (
            models.Index(fields=("school_class", "starts_at")),
            models.Index(fields=("school", "starts_at")),
        )

    def __str__(self) -> str:
        return f"{self.title} ({self.starts_at:%Y-%m-%d %H:%M} UTC)"

    def clean(self) -> None:
        if self.school_class_id is not None and self.school_class.school_id != self.school_id:
            raise ValidationError({"school_class": _("This class belongs to another school.")})

    @property
    def join_opens_at(self) -> datetime:
        return self.starts_at - timedelta(minutes=settings.HOMEROOM_JOIN_OPENS_MINUTES)

    def is_joinable(self, now: datetime | None = None) -> bool:
        """The Join button is live from a few minutes before the start until the end."""
        now = now or timezone.now()
        if self.state in (LessonState.ENDED, LessonState.CANCELLED):
            return False
        return self.join_opens_at <= now < self.ends_at

    def is_live(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.state == LessonState.LIVE and now < self.ends_at
