"""A OneRoster bundle uploaded by a school admin (or an operator), from upload to applied.

The bundle's bytes are kept in the database, not on a disk, so that whichever worker validates or
applies it can read it. `report` holds what validation found, in the shape the command line's
`--json` prints: `{"valid", "errors": [{"file", "line", "column", "message"}], "counts"}`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from classrooms.models.school import School


class RosterImportState(models.TextChoices):
    VALIDATING = "validating", _("Checking")
    VALID = "valid", _("Ready to apply")
    INVALID = "invalid", _("Has errors")
    APPLYING = "applying", _("Applying")
    APPLIED = "applied", _("Applied")
    FAILED = "failed", _("Failed")


class RosterImport(models.Model):
    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="roster_imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(
        max_length=16, choices=RosterImportState.choices, default=RosterImportState.VALIDATING
    )
    progress = models.PositiveSmallIntegerField(default=0)
    file_names = models.JSONField(default=list)
    bundle = models.BinaryField()
    size_bytes = models.PositiveBigIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("roster import")
        verbose_name_plural = _("roster imports")
        ordering = ("-created_at",)
        constraints = (
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="roster_import_progress_max"
            ),
        )

    def __str__(self) -> str:
        return f"roster import {self.pk} ({self.state})"
