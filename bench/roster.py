"""The `roster` benchmark: validate, apply and re-import a generated OneRoster bundle of one school.

The bundle (OneRoster 1.1, bulk: 10,000 people, 400 classes, 60,000 enrollments) is written to a
temporary folder and read back through the command line's path. Queries are counted with
`connection.execute_wrapper`, which has no cap (the DEBUG query log keeps only 9,000). Peak memory
is the process' peak resident set size (`resource.getrusage(RUSAGE_SELF).ru_maxrss`), read after
each phase; it includes Django and the interpreter.
"""

from __future__ import annotations

import csv
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

USERS = 10_000
CLASSES = 400
ENROLLMENTS = 60_000
TEACHERS = 400
GUARDIANS = 1_000


def _write(path: Path, header: list[str], rows: Iterator[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_bundle(folder: Path) -> None:
    """USERS people (teachers, guardians, pupils); each class has a teacher and pupils."""
    org = "org-bench"
    _write(
        folder / "manifest.csv",
        ["propertyName", "value"],
        iter(
            [
                ["manifest.version", "1.0"],
                ["oneroster.version", "1.1"],
                *(
                    [f"file.{name}", "bulk"]
                    for name in (
                        "orgs",
                        "academicSessions",
                        "courses",
                        "classes",
                        "users",
                        "enrollments",
                    )
                ),
            ]
        ),
    )
    _write(
        folder / "orgs.csv",
        ["sourcedId", "status", "dateLastModified", "name", "type", "identifier"],
        iter([[org, "", "", "Bench School", "school", "bench"]]),
    )
    _write(
        folder / "academicSessions.csv",
        ["sourcedId", "title", "type", "startDate", "endDate", "schoolYear"],
        iter([["t-1", "2025-2026", "schoolYear", "2025-09-01", "2026-07-03", "2026"]]),
    )
    _write(
        folder / "courses.csv",
        ["sourcedId", "title", "courseCode", "orgSourcedId"],
        ([f"c-{n}", f"Course {n}", f"C{n}", org] for n in range(40)),
    )
    _write(
        folder / "classes.csv",
        ["sourcedId", "title", "courseSourcedId", "classType", "schoolSourcedId", "termSourcedIds"],
        ([f"k-{n}", f"Class {n}", f"c-{n % 40}", "scheduled", org, "t-1"] for n in range(CLASSES)),
    )
    pupils = USERS - TEACHERS - GUARDIANS

    def users() -> Iterator[list[str]]:
        for n in range(USERS):
            if n < TEACHERS:
                role, agents = "teacher", ""
            elif n < TEACHERS + GUARDIANS:
                role, agents = "parent", f"u-{TEACHERS + GUARDIANS + (n - TEACHERS)}"
            else:
                role, agents = "student", ""
            email = f"person{n}@bench.test"
            yield [f"u-{n}", "true", org, role, email, f"Given{n}", f"Family{n}", email, agents]

    _write(
        folder / "users.csv",
        [
            "sourcedId",
            "enabledUser",
            "orgSourcedIds",
            "role",
            "username",
            "givenName",
            "familyName",
            "email",
            "agentSourcedIds",
        ],
        users(),
    )
    per_class = ENROLLMENTS // CLASSES - 1

    def enrollments() -> Iterator[list[str]]:
        for k in range(CLASSES):
            yield [f"e-{k}-t", f"k-{k}", org, f"u-{k % TEACHERS}", "teacher"]
            for i in range(per_class):
                pupil = TEACHERS + GUARDIANS + (k * per_class + i) % pupils
                yield [f"e-{k}-{i}", f"k-{k}", org, f"u-{pupil}", "student"]

    _write(
        folder / "enrollments.csv",
        ["sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"],
        enrollments(),
    )


@contextmanager
def _count_queries() -> Iterator[list[int]]:
    from django.db import connection

    counter = [0]

    def wrapper(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        counter[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield counter


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def bench_roster(seconds: float) -> dict[str, Any]:
    from django.db import transaction

    from accounts.models import Membership
    from classrooms.models import Enrollment, School, SchoolClass
    from classrooms.oneroster.bundle import read_path
    from classrooms.oneroster.services import roster_import_bundle_report

    school = School.objects.create(name="Bench School", slug="bench")
    phases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="homeroom-roster-") as folder:
        started = time.perf_counter()
        write_bundle(Path(folder))
        generate_s = time.perf_counter() - started
        bundle = read_path(Path(folder))
        for phase, apply in (("validate", False), ("apply", True), ("reimport", True)):
            with _count_queries() as queries:
                started = time.perf_counter()
                report = roster_import_bundle_report(
                    school=school, files=bundle, apply=apply, actor=None
                )
                elapsed = time.perf_counter() - started
            phases[phase] = {
                "seconds": round(elapsed, 2),
                "queries": queries[0],
                "valid": report.valid,
                "counts": report.as_json()["counts"],
                "peak_rss_mb": _peak_mb(),
            }
        bundle_mb = round(bundle.size_bytes / (1024 * 1024), 2)
    with transaction.atomic():
        rows = {
            "memberships": Membership.objects.filter(school=school).count(),
            "classes": SchoolClass.objects.filter(school=school).count(),
            "enrollments": Enrollment.objects.filter(school=school).count(),
        }
    return {
        "size": {"users": USERS, "classes": CLASSES, "enrollments": ENROLLMENTS},
        "bundle_mb": bundle_mb,
        "generate_seconds": round(generate_s, 2),
        "phases": phases,
        "rows_after": rows,
        "peak_rss_mb": _peak_mb(),
        "memory_measure": "resource.getrusage(RUSAGE_SELF).ru_maxrss, whole process",
        "goals": {"validate_s": 60, "apply_s": 60, "peak_rss_mb": 500},
    }
