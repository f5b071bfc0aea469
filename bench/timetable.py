"""`timetable` benchmark: the pages and feeds people open most, on a school of realistic size.

One school of 1,000 pupils and 40 teachers in 60 classes (each pupil in 6 classes of about 100),
with a whole term of weekly lessons (four a week per class, 36 weeks: 8,640 lessons). Measured
in-process through Django's test client (no network, no daphne): requests per second, p50 and p95
latency, and queries per request for the pupil's week, the teacher's week, the lessons API list
(a week, as the teacher) and the pupil's iCalendar feed (30 days back to 180 ahead).
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import date, datetime, timedelta
from typing import Any

PUPILS = 1000
TEACHERS = 40
CLASSES = 60
CLASSES_PER_PUPIL = 6
LESSONS_PER_WEEK = 4
WEEKS = 36


def _build_school() -> dict[str, Any]:
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import Membership, Role, User
    from classrooms.models import Course, Enrollment, Lesson, School, SchoolClass, Term

    rng = random.Random(7)
    school = School.objects.create(
        name="Bench School", slug="bench-timetable", time_zone="Europe/Paris"
    )
    tz = school.tzinfo
    today = timezone.now().astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    first = monday - timedelta(weeks=WEEKS // 2)
    term = Term.objects.create(
        school=school, name="Bench term", starts_on=first, ends_on=first + timedelta(weeks=WEEKS)
    )
    courses = Course.objects.bulk_create(
        [Course(school=school, title=f"Course {n}", code=f"C{n}") for n in range(12)]
    )
    password = make_password("bench-password")
    teachers = User.objects.bulk_create(
        [
            User(email=f"teacher{n}@bench.test", given_name="Teacher", password=password)
            for n in range(TEACHERS)
        ]
    )
    pupils = User.objects.bulk_create(
        [
            User(email=f"pupil{n}@bench.test", given_name="Pupil", password=password)
            for n in range(PUPILS)
        ]
    )
    Membership.objects.bulk_create(
        [Membership(user=u, school=school, role=Role.TEACHER) for u in teachers]
        + [Membership(user=u, school=school, role=Role.PUPIL) for u in pupils]
    )
    classes = SchoolClass.objects.bulk_create(
        [
            SchoolClass(school=school, term=term, course=courses[n % 12], name=f"Class {n}")
            for n in range(CLASSES)
        ]
    )
    enrollments = [
        Enrollment(school=school, school_class=c, user=teachers[n % TEACHERS], role="teacher")
        for n, c in enumerate(classes)
    ]
    for pupil in pupils:
        enrollments += [
            Enrollment(school=school, school_class=c, user=pupil, role="pupil")
            for c in rng.sample(classes, CLASSES_PER_PUPIL)
        ]
    Enrollment.objects.bulk_create(enrollments, batch_size=2000)
    lessons = []
    for n, school_class in enumerate(classes):
        slots = [((n + k * 3) % 5, 8 + (n + k) % 8) for k in range(LESSONS_PER_WEEK)]
        for week in range(WEEKS):
            for weekday, hour in slots:
                day = first + timedelta(weeks=week, days=weekday)
                starts_at = datetime(day.year, day.month, day.day, hour, tzinfo=tz)
                lessons.append(
                    Lesson(
                        school=school,
                        school_class=school_class,
                        title=school_class.course.title,
                        starts_at=starts_at,
                        ends_at=starts_at + timedelta(minutes=55),
                    )
                )
    Lesson.objects.bulk_create(lessons, batch_size=2000)
    return {
        "pupil": pupils[0],
        "teacher": teachers[0],
        "monday": monday,
        "lessons": len(lessons),
        "enrollments": len(enrollments),
    }


def _measure(client: Any, url: str, repeats: int) -> dict[str, Any]:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # warm up
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}")
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    timings = []
    started = time.perf_counter()
    for _ in range(repeats):
        one = time.perf_counter()
        client.get(url)
        timings.append((time.perf_counter() - one) * 1000)
    elapsed = time.perf_counter() - started
    timings.sort()
    return {
        "queries": len(queries),
        "requests_per_second": round(repeats / elapsed, 1),
        "p50_ms": round(statistics.median(timings), 2),
        "p95_ms": round(timings[max(0, int(len(timings) * 0.95) - 1)], 2),
        "bytes": len(response.content),
    }


def bench_timetable(seconds: float) -> dict[str, Any]:
    from django.test import Client

    from classrooms.timetable.services import calendar_feed_ensure

    school = _build_school()
    repeats = max(30, int(seconds * 20))
    pupil, teacher = Client(), Client()
    pupil.force_login(school["pupil"])
    teacher.force_login(school["teacher"])
    monday: date = school["monday"]
    feed = calendar_feed_ensure(user=school["pupil"])
    week = f"from={monday.isoformat()}&to={(monday + timedelta(days=6)).isoformat()}"
    pages = {
        "pupil_week": _measure(pupil, "/week/", repeats),
        "teacher_week": _measure(teacher, "/week/", repeats),
        "lessons_api_week": _measure(teacher, f"/api/v1/lessons/?{week}", repeats),
        "pupil_ics_feed": _measure(Client(), f"/calendar/{feed.token}.ics", repeats),
    }
    return {
        "school": {
            "pupils": PUPILS,
            "teachers": TEACHERS,
            "classes": CLASSES,
            "enrollments": school["enrollments"],
            "lessons": school["lessons"],
        },
        "measured": "in-process Django test client, one thread, no network",
        "repeats": repeats,
        "pages": pages,
        "goal_p95_ms_week_pages": 50,
    }
