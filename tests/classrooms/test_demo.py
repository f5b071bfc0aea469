"""`manage.py seed_demo`: the demo school the README and the browser tests rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from pytest_django.asserts import assertContains

from accounts.models import Membership, Role, User
from classrooms.demo import DEMO_PASSWORD, LIVE_MINUTES_LEFT, LIVE_TITLE
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

pytestmark = pytest.mark.django_db

DEMO_EMAILS = [
    "admin@demo.test",
    "teacher@demo.test",
    "teacher2@demo.test",
    "teacher3@demo.test",
    *(f"pupil{n}@demo.test" for n in range(1, 61)),
]

# Moments in Paris time (UTC+1 in winter): around the live class's own slots, around the live
# teacher's other class, a free afternoon, a weekend, and just before midnight.
MOMENTS = {
    "Monday 08:55, just before 5B Maths": datetime(2025, 3, 10, 7, 55, tzinfo=UTC),
    "Monday 09:20, during 5B Maths": datetime(2025, 3, 10, 8, 20, tzinfo=UTC),
    "Monday 09:50, at the end of 5B Maths": datetime(2025, 3, 10, 8, 50, tzinfo=UTC),
    "Tuesday 14:05, during the teacher's 4A Maths": datetime(2025, 3, 11, 13, 5, tzinfo=UTC),
    "Wednesday 09:05, during 5B's French": datetime(2025, 3, 12, 8, 5, tzinfo=UTC),
    "Wednesday 16:40, no lesson": datetime(2025, 3, 12, 15, 40, tzinfo=UTC),
    "Saturday 11:00": datetime(2025, 3, 15, 10, 0, tzinfo=UTC),
    "Sunday 23:58": datetime(2025, 3, 16, 22, 58, tzinfo=UTC),
    "Monday 00:05, a new week": datetime(2025, 3, 16, 23, 5, tzinfo=UTC),
}


def seed(time_machine, moment: datetime) -> str:
    time_machine.move_to(moment, tick=False)
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (School, Term, Course, SchoolClass, User, Membership, Enrollment, Lesson)
    }


def live_lessons(now: datetime) -> list[Lesson]:
    return list(
        Lesson.objects.filter(
            state=LessonState.LIVE, starts_at__lte=now, ends_at__gt=now
        ).select_related("school_class")
    )


@pytest.fixture
def seeded(time_machine) -> datetime:
    moment = MOMENTS["Wednesday 16:40, no lesson"]
    seed(time_machine, moment)
    return moment


def test_the_demo_school_is_ecole_jules_ferry_in_paris(seeded):
    school = School.objects.get(slug="demo")
    assert school.name == "Ecole Jules-Ferry"
    assert school.time_zone == "Europe/Paris"


def test_every_demo_account_logs_in_with_the_demo_password(seeded):
    assert User.objects.count() == len(DEMO_EMAILS) == 64
    for email in DEMO_EMAILS:
        user = authenticate(username=email, password=DEMO_PASSWORD)
        assert user is not None, email
        assert user.is_active


def test_the_demo_accounts_hold_their_roles(seeded):
    school = School.objects.get(slug="demo")
    roles = dict(
        Membership.objects.filter(school=school)
        .values_list("user__email", "role")
        .order_by("user__email")
    )
    assert roles["admin@demo.test"] == Role.ADMIN
    assert {roles[f"teacher{n}@demo.test"] for n in ("", "2", "3")} == {Role.TEACHER}
    assert {roles[f"pupil{n}@demo.test"] for n in range(1, 61)} == {Role.PUPIL}


def test_the_demo_has_four_classes_and_5b_maths_is_taught_by_teacher_to_pupils_1_to_30(seeded):
    classes = SchoolClass.objects.filter(school__slug="demo")
    assert classes.count() == 4
    maths = classes.get(name="5B Maths")
    roster = Enrollment.objects.filter(school_class=maths)
    assert list(roster.teachers().values_list("user__email", flat=True)) == ["teacher@demo.test"]
    assert set(roster.pupils().values_list("user__email", flat=True)) == {
        f"pupil{n}@demo.test" for n in range(1, 31)
    }


def test_every_pupil_of_the_demo_is_in_two_classes(seeded):
    for n in (1, 30, 31, 60):
        pupil = User.objects.get(email=f"pupil{n}@demo.test")
        assert pupil.enrollments.filter(role=EnrollmentRole.PUPIL).count() == 2


@pytest.mark.parametrize("moment", list(MOMENTS.values()), ids=list(MOMENTS))
def test_one_5b_maths_lesson_is_live_now_whenever_the_demo_is_seeded(time_machine, moment):
    seed(time_machine, moment)
    live = live_lessons(moment)
    assert [lesson.school_class.name for lesson in live] == ["5B Maths"]
    assert live[0].is_joinable(moment)


@pytest.mark.parametrize("moment", list(MOMENTS.values()), ids=list(MOMENTS))
def test_the_live_lesson_has_its_topic_and_half_an_hour_left_whenever_the_demo_is_seeded(
    time_machine, moment
):
    """What the README's demo and the browser tests join: "Fractions", for long enough to try it,
    even when the demo is seeded in the last minutes of one of 5B Maths' own lessons."""
    seed(time_machine, moment)
    (live,) = live_lessons(moment)
    assert live.title == LIVE_TITLE
    assert live.ends_at - moment >= timedelta(minutes=LIVE_MINUTES_LEFT)


@pytest.mark.parametrize("moment", list(MOMENTS.values()), ids=list(MOMENTS))
def test_the_live_lesson_starts_today_so_today_s_timetable_shows_it(time_machine, moment):
    """The timetable puts a lesson on the day it starts, in the school's zone: seeded just after
    midnight (on a Monday, a new week), the live lesson must not start the day before."""
    seed(time_machine, moment)
    (live,) = live_lessons(moment)
    paris = School.objects.get(slug="demo").tzinfo
    assert live.starts_at.astimezone(paris).date() == moment.astimezone(paris).date()


def test_during_5b_maths_own_lesson_that_lesson_is_the_live_one(time_machine):
    moment = MOMENTS["Monday 09:20, during 5B Maths"]
    seed(time_machine, moment)
    (live,) = live_lessons(moment)
    assert live.starts_at == datetime(2025, 3, 10, 8, 0, tzinfo=UTC)  # 09:00 in Paris


@pytest.mark.parametrize("moment", list(MOMENTS.values()), ids=list(MOMENTS))
def test_the_live_lesson_s_teacher_has_no_other_lesson_at_the_same_time(time_machine, moment):
    seed(time_machine, moment)
    (live,) = live_lessons(moment)
    teacher = User.objects.get(email="teacher@demo.test")
    clashes = (
        Lesson.objects.filter(school_class__enrollments__user=teacher)
        .not_cancelled()
        .overlapping(live.starts_at, live.ends_at)
        .exclude(pk=live.pk)
    )
    assert list(clashes) == []


@pytest.mark.parametrize("moment", list(MOMENTS.values()), ids=list(MOMENTS))
def test_the_live_lesson_s_pupils_have_no_other_lesson_at_the_same_time(time_machine, moment):
    """pupil1 is not expected in 5B Maths and 5B Français at once."""
    seed(time_machine, moment)
    (live,) = live_lessons(moment)
    pupil = User.objects.get(email="pupil1@demo.test")
    clashes = (
        Lesson.objects.filter(school_class__enrollments__user=pupil)
        .not_cancelled()
        .overlapping(live.starts_at, live.ends_at)
        .exclude(pk=live.pk)
    )
    assert [(c.school_class.name, c.starts_at) for c in clashes] == []


def test_the_demo_fills_this_week_and_next_and_ends_what_is_over(seeded):
    lessons = Lesson.objects.filter(school__slug="demo")
    # 14 weekly slots over two weeks, plus the live lesson.
    assert lessons.count() == 2 * 14 + 1
    assert (
        not lessons.filter(ends_at__lte=seeded)
        .exclude(state__in=(LessonState.ENDED, LessonState.CANCELLED))
        .exists()
    )
    assert lessons.filter(starts_at__gt=seeded, state=LessonState.SCHEDULED).exists()


def test_seeding_twice_adds_nothing(time_machine):
    moment = MOMENTS["Monday 09:20, during 5B Maths"]
    seed(time_machine, moment)
    first = row_counts()
    output = seed(time_machine, moment)
    assert row_counts() == first
    assert "0 accounts and 0 lessons added" in output
    assert len(live_lessons(moment)) == 1


def test_seeding_an_hour_later_keeps_one_live_lesson_and_adds_no_people(time_machine):
    seed(time_machine, MOMENTS["Monday 09:20, during 5B Maths"])
    people = User.objects.count(), Membership.objects.count(), Enrollment.objects.count()
    later = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    seed(time_machine, later)
    assert (User.objects.count(), Membership.objects.count(), Enrollment.objects.count()) == people
    assert [lesson.school_class.name for lesson in live_lessons(later)] == ["5B Maths"]


def test_the_command_prints_the_accounts_and_the_password(time_machine):
    output = seed(time_machine, MOMENTS["Saturday 11:00"])
    assert "64 accounts" in output
    assert "homeroom-demo" in output
    assert "admin@demo.test" in output
    assert "teacher@demo.test" in output
    assert "pupil60@demo.test" in output


def test_pupil1_logs_in_and_sees_the_live_5b_maths_lesson_with_a_join_link(client, seeded):
    response = client.post(
        "/accounts/login/",
        {"username": "pupil1@demo.test", "password": DEMO_PASSWORD},
        follow=True,
    )
    (live,) = live_lessons(seeded)
    assertContains(response, "My week</h2>")
    assertContains(response, "Live now")
    assertContains(response, f'<a class="btn btn--join" href="/lessons/{live.key}/"')
