"""`manage.py seed_demo`: create or complete the demo school and print how to log in."""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from classrooms import demo


class Command(BaseCommand):
    help = "Create the demo school (idempotent) and print its accounts."

    def handle(self, *args: Any, **options: Any) -> None:
        summary = demo.demo_school_seed(now=timezone.now())
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo school ready: {summary.users_created} accounts and "
                f"{summary.lessons_created} lessons added; 5B Maths is live now."
            )
        )
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"  Log in at http://127.0.0.1:8000/ with password {demo.DEMO_PASSWORD}:",
                    f"    school admin  {demo.ADMIN[0]}",
                    "    teachers      teacher@demo.test (5B Maths, 4A Maths),"
                    " teacher2@demo.test, teacher3@demo.test",
                    "    pupils        pupil1@demo.test .. pupil60@demo.test"
                    " (pupil1-30 are in 5B, pupil31-60 in 4A)",
                    "",
                ]
            )
        )
