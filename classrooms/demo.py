"""The demo school that `make demo` and the browser tests run on.

`demo_school_seed` is idempotent: run it again and it adds nothing that is already there, only the
lessons of days that have come since, and it makes sure one "5B Maths" lesson is live now. Every
account shares the password `homeroom-demo`, which the README prints: this is demo data, never a
real school's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth.hashers import make_password
from django.db import transaction

from accounts.models import Membership, Role, User
from classrooms.models import (
    Course,
    Enrollment,
    EnrollmentRole,
    Lesson,
    LessonState,
    School,
    SchoolClass,
    Term,
)
from classrooms.services import lessons_end_finished

DEMO_PASSWORD = "homeroom-demo"  # noqa: S105 -- the documented password of the demo accounts
DEMO_SLUG = "demo"
LESSON_MINUTES = 55

ADMIN = ("admin@demo.test", "Anne", "Dubois")
TEACHERS = (
    ("teacher@demo.test", "Paul", "Lefèvre"),
    ("teacher2@demo.test", "Sophie", "Moreau"),
    ("teacher3@demo.test", "Karim", "Benali"),
)
PUPIL_COUNT = 60
GIVEN_NAMES = (
    "Léa",
    "Hugo",
    "Chloé",
    "Lucas",
    "Inès",
    "Nathan",
    "Manon",
    "Louis",
    "Jade",
    "Gabriel",
    "Emma",
    "Arthur",
    "Zoé",
    "Jules",
    "Camille",
    "Adam",
    "Sarah",
    "Raphaël",
    "Lina",
    "Tom",
)
FAMILY_NAMES = (
    "Martin",
    "Bernard",
    "Petit",
    "Durand",
    "Leroy",
    "Roux",
    "Fournier",
    "Girard",
    "Lambert",
)

COURSES = {"MATH": "Mathematics", "FR": "French", "SCI": "Science"}


@dataclass(frozen=True)
class DemoClass:
    name: str
    course: str
    teacher: str
    pupils: range
    # (weekday, hour, minute) in the school's time zone; Monday is 0.
    slots: tuple[tuple[int, int, int], ...]


CLASSES = (
    DemoClass(
        "5B Maths",
        "MATH",
        "teacher@demo.test",
        range(1, 31),
        ((0, 9, 0), (1, 10, 0), (3, 14, 0), (4, 9, 0)),
    ),
    DemoClass(
        "5B Français",
        "FR",
        "teacher2@demo.test",
        range(1, 31),
        ((0, 10, 0), (2, 9, 0), (3, 10, 0), (4, 11, 0)),
    ),
    DemoClass(
        "4A Sciences",
        "SCI",
        "teacher3@demo.test",
        range(31, 61),
        ((0, 14, 0), (1, 9, 0), (3, 9, 0)),
    ),
    DemoClass(
        "4A Maths", "MATH", "teacher@demo.test", range(31, 61), ((1, 14, 0), (2, 10, 0), (4, 14, 0))
    ),
)
LIVE_CLASS = "5B Maths"
LIVE_TITLE = "Fractions: adding and comparing"
# A demo is tried for a while: the live lesson has at least this long left when it is seeded.
LIVE_MINUTES_LEFT = 30


@dataclass(frozen=True)
class DemoSummary:
    school_id: int
    users_created: int
    lessons_created: int
    live_lesson_key: str


def pupil_email(number: int) -> str:
    return f"pupil{number}@demo.test"


def _term_bounds(today: date) -> tuple[str, date, date]:
    """The school year holding `today`: September to early July."""
    first_year = today.year if today.month >= 8 else today.year - 1
    return (
        f"{first_year}-{first_year + 1}",
        date(first_year, 8, 25),
        date(first_year + 1, 7, 10),
    )


def _people(school: School) -> tuple[dict[str, User], int]:
    """Create the demo accounts that are missing; return all of them by email."""
    wanted = [ADMIN, *TEACHERS]
    wanted += [
        (
            pupil_email(n),
            GIVEN_NAMES[(n - 1) % len(GIVEN_NAMES)],
            # With 20 given names and 9 family names, every pupil's full name is distinct.
            FAMILY_NAMES[(n - 1) // len(GIVEN_NAMES) * 3 + (n - 1) % 3],
        )
        for n in range(1, PUPIL_COUNT + 1)
    ]
    existing = {user.email: user for user in User.objects.filter(email__in=[w[0] for w in wanted])}
    # One hash for every demo account: hashing 64 passwords one by one costs tens of seconds.
    password = make_password(DEMO_PASSWORD)
    missing = [
        User(email=email, given_name=given, family_name=family, password=password)
        for email, given, family in wanted
        if email not in existing
    ]
    User.objects.bulk_create(missing)
    users = {user.email: user for user in User.objects.filter(email__in=[w[0] for w in wanted])}
    roles = [(ADMIN[0], Role.ADMIN)]
    roles += [(email, Role.TEACHER) for email, _g, _f in TEACHERS]
    roles += [(pupil_email(n), Role.PUPIL) for n in range(1, PUPIL_COUNT + 1)]
    Membership.objects.bulk_create(
        [Membership(user=users[email], school=school, role=role) for email, role in roles],
        ignore_conflicts=True,
    )
    return users, len(missing)


def _lessons(
    school: School, school_class: SchoolClass, spec: DemoClass, first_day: date, days: int
) -> int:
    tz = school.tzinfo
    existing = set(
        Lesson.objects.filter(school_class=school_class).values_list("starts_at", flat=True)
    )
    new = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        for weekday, hour, minute in spec.slots:
            if day.weekday() != weekday:
                continue
            starts_at = datetime.combine(day, time(hour, minute), tzinfo=tz)
            if starts_at in existing:
                continue
            new.append(
                Lesson(
                    school=school,
                    school_class=school_class,
                    title=COURSES[spec.course],
                    starts_at=starts_at,
                    ends_at=starts_at + timedelta(minutes=LESSON_MINUTES),
                )
            )
    Lesson.objects.bulk_create(new)
    return len(new)


def _live_lesson(school: School, classes: dict[str, SchoolClass], now: datetime) -> Lesson:
    """Make sure a lesson of the live class is on now, with `LIVE_MINUTES_LEFT` to go and
    `LIVE_TITLE` as its topic, and that its teacher and pupils have no other.

    During one of the class's own timetabled lessons that lesson is the live one; one that ends
    sooner gives way to a new lesson (it would end while the demo is being tried).
    """
    live_class = classes[LIVE_CLASS]
    current = (
        Lesson.objects.filter(
            school_class=live_class,
            starts_at__lte=now,
            ends_at__gte=now + timedelta(minutes=LIVE_MINUTES_LEFT),
        )
        .not_cancelled()
        .first()
    )
    if current is None:
        local = now.astimezone(school.tzinfo).replace(second=0, microsecond=0)
        start = local - timedelta(minutes=local.minute % 5 + 10)
        # The timetable shows a lesson on the day it starts: just after midnight, today's.
        start = max(start, local.replace(hour=0, minute=0))
        current = Lesson.objects.create(
            school=school,
            school_class=live_class,
            title=LIVE_TITLE,
            starts_at=start,
            ends_at=start + timedelta(minutes=LESSON_MINUTES),
            state=LessonState.LIVE,
        )
    elif current.state != LessonState.LIVE or current.title != LIVE_TITLE:
        current.state = LessonState.LIVE
        current.title = LIVE_TITLE
        current.save(update_fields=["state", "title"])
    # Nobody can be in two lessons at once: call off what else the live class's teacher and
    # pupils had in that hour.
    people = Enrollment.objects.filter(school_class=live_class).values("user_id")
    Lesson.objects.filter(school_class__enrollments__user_id__in=people).exclude(
        pk=current.pk
    ).overlapping(current.starts_at, current.ends_at).update(state=LessonState.CANCELLED)
    return current


@transaction.atomic
def demo_school_seed(*, now: datetime) -> DemoSummary:
    """Create or complete the demo school "Ecole Jules-Ferry" around `now`.

    Lessons fill this week and next, Monday to Friday, in the school's time zone; lessons already
    over are marked ended; one "5B Maths" lesson is live at `now`.
    """
    school, _ = School.objects.update_or_create(
        slug=DEMO_SLUG, defaults={"name": "Ecole Jules-Ferry", "time_zone": "Europe/Paris"}
    )
    today = now.astimezone(school.tzinfo).date()
    term_name, term_start, term_end = _term_bounds(today)
    term, _ = Term.objects.get_or_create(
        school=school, name=term_name, defaults={"starts_on": term_start, "ends_on": term_end}
    )
    courses = {
        code: Course.objects.get_or_create(school=school, code=code, defaults={"title": title})[0]
        for code, title in COURSES.items()
    }
    users, users_created = _people(school)

    first_day = today - timedelta(days=today.weekday())
    classes: dict[str, SchoolClass] = {}
    lessons_created = 0
    for spec in CLASSES:
        school_class, _ = SchoolClass.objects.get_or_create(
            school=school, term=term, name=spec.name, defaults={"course": courses[spec.course]}
        )
        classes[spec.name] = school_class
        roster = [(users[spec.teacher], EnrollmentRole.TEACHER)]
        roster += [(users[pupil_email(n)], EnrollmentRole.PUPIL) for n in spec.pupils]
        Enrollment.objects.bulk_create(
            [
                Enrollment(school=school, school_class=school_class, user=user, role=role)
                for user, role in roster
            ],
            ignore_conflicts=True,
        )
        lessons_created += _lessons(school, school_class, spec, first_day, days=14)

    lessons_end_finished(now=now)
    live = _live_lesson(school, classes, now)
    return DemoSummary(
        school_id=school.pk,
        users_created=users_created,
        lessons_created=lessons_created,
        live_lesson_key=live.key,
    )
