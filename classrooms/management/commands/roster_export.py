"""`manage.py roster_export --school SLUG OUT.zip`: the school's roster as OneRoster 1.2 CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from classrooms.models import School
from classrooms.oneroster.services import roster_export


class Command(BaseCommand):
    help = "Write a school's roster to a OneRoster 1.2 CSV zip."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", type=Path, help="the zip file to write")
        parser.add_argument("--school", required=True, help="the school's short name (slug)")

    def handle(self, *args: Any, **options: Any) -> None:
        school = School.objects.filter(slug=options["school"]).first()
        if school is None:
            raise CommandError(f'No school has the short name "{options["school"]}".')
        data = roster_export(school=school, actor=None)
        options["out"].write_bytes(data)
        self.stdout.write(f"Wrote {options['out']} ({len(data)} bytes).")
