"""`manage.py roster_import BUNDLE --school SLUG [--apply] [--json]`: check, and apply, a roster.

The same path as the upload pages (read -> plan -> apply). Without `--apply` nothing is written,
not even an audit event. With it the bundle is applied in one transaction and recorded in the
school's audit log with no actor (the system). Exit status: 0 valid, 1 errors, 2 a usage error
such as an unknown school (Django's CommandError).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from classrooms.models import School
from classrooms.oneroster.bundle import read_path
from classrooms.oneroster.exceptions import RosterBundleRefused
from classrooms.oneroster.report import Report
from classrooms.oneroster.services import roster_import_bundle_report


class Command(BaseCommand):
    help = "Check a OneRoster bundle (a zip or a folder of CSV files) against a school; --apply."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bundle", type=Path, help="a OneRoster zip, or a folder of CSV files")
        parser.add_argument("--school", required=True, help="the school's short name (slug)")
        parser.add_argument("--apply", action="store_true", help="write the changes if valid")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        school = School.objects.filter(slug=options["school"]).first()
        if school is None:
            raise CommandError(f'No school has the short name "{options["school"]}".')
        try:
            report = roster_import_bundle_report(
                school=school,
                files=read_path(options["bundle"]),
                apply=options["apply"],
                actor=None,
            )
        except RosterBundleRefused as refused:
            report = Report.refused(refused.message)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(), ensure_ascii=False))
        else:
            self._print(report, applied=options["apply"])
        if not report.valid:
            sys.exit(1)

    def _print(self, report: Report, *, applied: bool) -> None:
        for error in report.errors:
            self.stdout.write(error.as_text())
        if report.error_count > len(report.errors):
            self.stdout.write(f"... and {report.error_count - len(report.errors)} more errors")
        for kind, counts in report.counts.items():
            self.stdout.write(
                f"{kind}: {counts.create} to create, {counts.update} to update, "
                f"{counts.deactivate} to deactivate, {counts.unchanged} unchanged"
            )
        if not report.valid:
            self.stdout.write(f"{report.error_count} errors: nothing was written.")
        elif applied:
            self.stdout.write(self.style.SUCCESS("Applied."))
        else:
            self.stdout.write("Valid. Nothing was written; run again with --apply to apply.")
