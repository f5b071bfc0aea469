"""Homeroom's benchmarks: `python bench/run.py [NAME ...]` runs them and prints JSON.

Each benchmark prints one JSON object on stdout and saves it under bench/results/NAME.json.
Benchmarks report numbers for closing notes and operators; they assert nothing (tests do that).
They run on a throwaway SQLite database (or on DATABASE_URL when set) and never touch var/.

- `home-pages`: queries and latency of each role's home page, on the demo school and on a school
  ten times as large (more lessons, classes and pupils); queries must not grow with the size.
- `timetable`: week pages, the lessons API and the calendar feed on a school of 1,000 pupils, 40
  teachers, 60 classes and a term of weekly lessons (see bench/timetable.py).
- `roster`: validate, apply and re-import a generated OneRoster bundle of one school (10,000
  people, 400 classes, 60,000 enrollments): seconds, queries and peak memory (bench/roster.py).
- `relay-lecture`, `relay-gallery`, `relay-gallery-single-layer`, `relay-full`,
  `relay-full-gso-compared`, `relay-transcode-baseline`, `keyframe-storm`, `join-storm`: the
  forwarding relay under load from aiortc peers in another process (bench/relay/, issue 6).
  Their peers offer ICE candidates of one address family, IPv4 unless `--address-family ipv6`
  (join-storm: both).
- `udp-send-floor`: a bare UDP send loop's CPU per 1,200-byte datagram on loopback, the floor
  under the relay's packets per CPU-second on this machine (bench/send_floor.py); and per
  datagram sent by UDP GSO in batches of 2, 4 and 20 (`gso`), what batching could save.
- `udp-fanout-floor`: the kernel's CPU per datagram when each 1,200-byte packet goes to 30 (or 9)
  receivers at relay-lecture's (or relay-full's) rate, by sendto and by sendmmsg, from a small C
  program (bench/fanout_floor.c, needs `cc`): the floor under those benchmarks' relay CPU.
- `live-join`: in Chromium against a real daphne, a third participant joins the live lesson ten
  times: click-to-first-remote-frame p50/p95 and the relay's CPU (bench/live_join.py).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HOMEROOM_DATA_DIR", tempfile.mkdtemp(prefix="homeroom-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0, interactive=False)


def _grow_demo_school(factor: int) -> None:
    """Add (factor - 1) times the demo school's classes, pupils and lessons again."""
    from accounts.models import Membership, Role, User
    from classrooms.models import Enrollment, EnrollmentRole, Lesson, School, SchoolClass

    school = School.objects.get(slug="demo")
    teacher = User.objects.get(email="teacher@demo.test")
    pupil = User.objects.get(email="pupil1@demo.test")
    template = list(SchoolClass.objects.filter(school=school))
    password = pupil.password
    for copy in range(1, factor):
        pupils = User.objects.bulk_create(
            [
                User(email=f"extra{copy}-{n}@demo.test", given_name="Extra", password=password)
                for n in range(60)
            ]
        )
        Membership.objects.bulk_create(
            [Membership(user=u, school=school, role=Role.PUPIL) for u in pupils]
        )
        for source in template:
            clone = SchoolClass.objects.create(
                school=school, term=source.term, course=source.course, name=f"{source.name} #{copy}"
            )
            roster = [(teacher, EnrollmentRole.TEACHER), (pupil, EnrollmentRole.PUPIL)]
            roster += [(u, EnrollmentRole.PUPIL) for u in pupils[:30]]
            Enrollment.objects.bulk_create(
                [
                    Enrollment(school=school, school_class=clone, user=u, role=role)
                    for u, role in roster
                ]
            )
            Lesson.objects.bulk_create(
                [
                    Lesson(
                        school=school,
                        school_class=clone,
                        title=lesson.title,
                        starts_at=lesson.starts_at + timedelta(minutes=5 * copy),
                        ends_at=lesson.ends_at + timedelta(minutes=5 * copy),
                        state=lesson.state,
                    )
                    for lesson in Lesson.objects.filter(school_class=source)
                ]
            )


def _measure_home(email: str, repeats: int) -> dict[str, Any]:
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User

    client = Client()
    client.force_login(User.objects.get(email=email))
    client.get("/")  # warm caches and the session
    # DEBUG keeps at most 9,000 queries in the log; once full, a capture would count nothing.
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/")
    assert response.status_code == 200, response.status_code  # noqa: S101 -- a broken page is no figure
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.get("/")
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "queries": len(queries),
        "p50_ms": round(statistics.median(timings), 2),
        "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 2),
    }


def bench_home_pages(seconds: float) -> dict[str, Any]:
    from django.db.models import Count
    from django.utils import timezone

    from classrooms.demo import demo_school_seed
    from classrooms.models import Enrollment, Lesson, SchoolClass

    roles = {
        "pupil": "pupil1@demo.test",
        "teacher": "teacher@demo.test",
        "admin": "admin@demo.test",
    }
    repeats = max(20, int(seconds * 10))
    demo_school_seed(now=timezone.now())
    sizes: dict[str, Any] = {}
    for label, factor in (("demo", 1), ("ten_times", 10)):
        if factor > 1:
            _grow_demo_school(factor)
        sizes[label] = {
            "lessons": Lesson.objects.count(),
            "classes": SchoolClass.objects.count(),
            "enrollments": Enrollment.objects.aggregate(n=Count("id"))["n"],
            "pages": {role: _measure_home(email, repeats) for role, email in roles.items()},
        }
    constant = all(
        sizes["demo"]["pages"][role]["queries"] == sizes["ten_times"]["pages"][role]["queries"]
        for role in roles
    )
    return {"sizes": sizes, "queries_constant": constant, "repeats": repeats}


def bench_roster(seconds: float) -> dict[str, Any]:
    from roster import bench_roster as run  # bench/ is the script's folder, first on sys.path

    return run(seconds)


def bench_live_join(seconds: float) -> dict[str, Any]:
    from live_join import bench_live_join as run  # bench/ is the script's folder, first on sys.path

    return run(seconds)


def bench_udp_send_floor(seconds: float) -> dict[str, Any]:
    from send_floor import bench_udp_send_floor as run  # bench/ is the script's folder

    return run(seconds)


def bench_udp_fanout_floor(seconds: float) -> dict[str, Any]:
    from send_floor import bench_udp_fanout_floor as run  # bench/ is the script's folder

    return run(seconds)


def bench_timetable(seconds: float) -> dict[str, Any]:
    from timetable import bench_timetable as run  # bench/ is the script's folder, first on sys.path

    return run(seconds)


# The relay benchmarks' peers offer ICE candidates of one address family (--address-family).
_address_family: Literal["ipv4", "ipv6"] = "ipv4"


def _relay_benchmarks() -> dict[str, Callable[[float], dict[str, Any]]]:
    from relay import NAMES, run  # bench/ is the script's folder, first on sys.path

    def bench(name: str, seconds: float) -> dict[str, Any]:
        return run(name, seconds, _address_family)

    return {name: functools.partial(bench, name) for name in NAMES}


def _default_seconds(name: str) -> float:
    # The relay's figures need a steady 20 s window after the peers are up; the others are
    # request loops for which a few seconds give stable percentiles.
    return 20.0 if name.startswith("relay-") or name == "keyframe-storm" else 5.0


BENCHMARKS: dict[str, Callable[[float], dict[str, Any]]] = {
    "home-pages": bench_home_pages,
    "live-join": bench_live_join,
    "roster": bench_roster,
    "timetable": bench_timetable,
    "udp-send-floor": bench_udp_send_floor,
    "udp-fanout-floor": bench_udp_fanout_floor,
    **_relay_benchmarks(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], default=[])
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="measured window (default: 20 for the relay, else 5)",
    )
    parser.add_argument(
        "--address-family",
        choices=("ipv4", "ipv6"),
        default="ipv4",
        help="the one address family of the relay benchmarks' ICE candidates (default: ipv4)",
    )
    args = parser.parse_args()
    global _address_family
    _address_family = args.address_family
    _setup_django()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in args.names or list(BENCHMARKS):
        seconds = args.seconds if args.seconds is not None else _default_seconds(name)
        result = {"benchmark": name, **BENCHMARKS[name](seconds)}
        text = json.dumps(result, indent=2, sort_keys=True)
        (RESULTS / f"{name}.json").write_text(text + "\n")
        print(text)


if __name__ == "__main__":
    main()
