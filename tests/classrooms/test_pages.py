"""The pages, through the test client: each role's home, a class, a lesson, and the Join button.

Anything outside the user's school or roster answers 404, never 500 and never "forbidden". The
home pages cost a fixed number of queries however many lessons, classes and pupils a school has.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from accounts.models import Membership, Role, User
from classrooms.models import (
    Enrollment,
    Lesson,
    LessonState,
    SchoolClass,
)
from tests.classrooms.matrix import ACCESS_CASES
from tests.factories import (
    PASSWORD,
    Campus,
    LessonFactory,
    SchoolClassFactory,
    grow_school,
    member,
    pupil_of,
    teacher_of,
)

pytestmark = pytest.mark.django_db


def class_url(school_class: SchoolClass) -> str:
    return f"/classes/{school_class.pk}/"


def lesson_url(lesson: Lesson) -> str:
    return f"/lessons/{lesson.key}/"


def join_link(lesson: Lesson) -> str:
    return f'<a class="btn btn--join" href="{lesson_url(lesson)}"'


@pytest.fixture
def log_in(client):
    """Log the test client in as a user; returns the client."""

    def log_in_as(user: User):
        client.force_login(user)
        return client

    return log_in_as


class TestAnonymous:
    @pytest.mark.parametrize("path", ["/", "/classes/1/", "/lessons/abc/"])
    def test_an_anonymous_visitor_is_sent_to_the_login_page(self, client, path):
        response = client.get(path)
        assertRedirects(response, f"/accounts/login/?next={path}", fetch_redirect_response=False)

    def test_a_deactivated_user_s_session_opens_nothing(self, campus, log_in):
        client = log_in(campus.inactive_pupil_x)
        assertRedirects(client.get("/"), "/accounts/login/?next=/", fetch_redirect_response=False)


class TestPupilHome:
    def test_a_pupil_sees_my_week_with_today_s_lesson_and_a_live_join_link(self, campus, log_in):
        response = log_in(campus.pupil_x).get("/")
        assertContains(response, "My week</h2>")
        assertContains(response, 'data-testid="today"')
        assertContains(response, "Fractions")
        assertContains(response, "5X Maths")
        # Only the "today" list carries Join buttons; the week grid shows times.
        assertContains(response, join_link(campus.lesson_x), count=1)

    def test_a_pupil_s_times_are_shown_in_the_school_s_time_zone(self, campus, log_in):
        """The lesson runs 09:25-10:20 UTC, which is 10:25-11:20 in Paris in March."""
        response = log_in(campus.pupil_x).get("/")
        assertContains(response, ">10:25</time>")
        assertContains(response, ">11:20</time>")

    def test_a_later_lesson_today_shows_when_join_opens_instead_of_a_link(
        self, campus, log_in, frozen_now
    ):
        later = LessonFactory.create(
            school_class=campus.class_x, title="Decimals", starts_at=frozen_now + timedelta(hours=2)
        )
        response = log_in(campus.pupil_x).get("/")
        assertContains(response, "Decimals")
        assertNotContains(response, join_link(later))
        # 11:30 UTC is 12:30 in Paris; Join opens ten minutes before.
        assertContains(response, "Opens 12:20")

    def test_a_pupil_sees_the_rest_of_the_week_and_not_next_week(self, campus, log_in, frozen_now):
        LessonFactory.create(
            school_class=campus.class_x,
            title="Thursday lesson",
            starts_at=frozen_now + timedelta(1),
        )
        LessonFactory.create(
            school_class=campus.class_x, title="Next week", starts_at=frozen_now + timedelta(7)
        )
        response = log_in(campus.pupil_x).get("/")
        assertContains(response, "Thursday lesson")
        assertNotContains(response, "Next week")

    def test_a_pupil_does_not_see_other_classes_or_schools(self, campus, log_in):
        response = log_in(campus.pupil_x).get("/")
        for foreign in ("Verbs", "5Y French", "Angles", "5Z Maths", "Ecole B"):
            assertNotContains(response, foreign)

    def test_a_pupil_without_lessons_today_is_told_so(self, campus, log_in):
        campus.lesson_x.delete()
        assertContains(log_in(campus.pupil_x).get("/"), "No lessons today.")


class TestTeacherHome:
    def test_a_teacher_sees_my_classes_with_pupil_counts(self, campus, log_in):
        history = SchoolClassFactory.create(school=campus.school_a, name="6C History")
        teacher = teacher_of(history)
        pupil_of(history)
        pupil_of(history)
        response = log_in(teacher).get("/")
        assertContains(response, "My classes")
        assertContains(response, f'href="{class_url(history)}"')
        assertContains(response, "6C History")
        assertContains(response, "2 pupils")
        assertNotContains(response, "5X Maths")

    def test_a_teacher_sees_only_the_classes_they_teach(self, campus, log_in):
        response = log_in(campus.teacher_x).get("/")
        assertContains(response, f'href="{class_url(campus.class_x)}"')
        assertNotContains(response, "5Y French")
        assertNotContains(response, "5Z Maths")

    def test_a_teacher_sees_their_next_lessons_with_join_for_the_one_on_now(
        self, campus, log_in, frozen_now
    ):
        tomorrow = LessonFactory.create(
            school_class=campus.class_x, title="Tomorrow", starts_at=frozen_now + timedelta(1)
        )
        response = log_in(campus.teacher_x).get("/")
        assertContains(response, "My next lessons")
        assertContains(response, join_link(campus.lesson_x))
        assertContains(response, "Tomorrow")
        assertNotContains(response, join_link(tomorrow))
        assertNotContains(response, "My week</h2>")  # the pupil section, not the nav link

    def test_a_teacher_without_classes_is_told_so(self, campus, log_in):
        teacher = member(campus.school_a, Role.TEACHER)
        response = log_in(teacher).get("/")
        assertContains(response, "You do not teach a class yet.")
        assertContains(response, "No lessons scheduled.")


class TestAdminHome:
    def test_a_school_admin_sees_the_school_s_counts(self, campus, log_in):
        campus.lesson_x.state = LessonState.LIVE
        campus.lesson_x.save()
        response = log_in(campus.admin_a).get("/")
        assertContains(response, "School overview")
        for label, count in [
            ("Pupils", 2),
            ("Teachers", 2),
            ("Guardians", 1),
            ("Classes", 2),
            ("Lessons this week", 2),
        ]:
            assertContains(
                response, f'<div class="stat"><dt>{label}</dt><dd>{count}</dd></div>', html=True
            )
        assertContains(
            response,
            '<div class="stat stat--live"><dt>Live now</dt><dd>1</dd></div>',
            html=True,
        )

    def test_a_school_admin_sees_every_class_of_the_school_and_no_other(self, campus, log_in):
        response = log_in(campus.admin_a).get("/")
        assertContains(response, f'href="{class_url(campus.class_x)}"')
        assertContains(response, f'href="{class_url(campus.class_y)}"')
        assertContains(response, "Theo Xenakis")
        assertNotContains(response, f'href="{class_url(campus.class_z)}"')
        assertNotContains(response, "Ecole B")

    def test_an_admin_who_teaches_sees_both_their_classes_and_the_overview(self, campus, log_in):
        Membership.objects.create(user=campus.teacher_x, school=campus.school_a, role=Role.ADMIN)
        response = log_in(campus.teacher_x).get("/")
        assertContains(response, "My classes")
        assertContains(response, "My next lessons")
        assertContains(response, "School overview")


class TestGuardianHome:
    def test_a_guardian_sees_their_ward_s_lessons_today(self, campus, log_in):
        response = log_in(campus.guardian_a).get("/")
        assertContains(response, "Your children today")
        assertContains(response, "Pia Xavier")
        assertContains(response, "Fractions")
        assertNotContains(response, "Verbs")
        assertNotContains(response, 'class="btn btn--join"')

    def test_a_guardian_with_no_ward_is_told_to_ask_the_school(self, campus, log_in):
        guardian = member(campus.school_a, Role.GUARDIAN)
        assertContains(log_in(guardian).get("/"), "No pupil is linked to your account yet.")


class TestHomeWithoutSchool:
    def test_a_user_of_no_school_is_told_to_ask_their_school(self, campus, log_in):
        response = log_in(campus.outsider).get("/")
        assertContains(response, "Your account is not part of a school yet.")

    def test_the_home_page_greets_the_user_by_given_name(self, campus, log_in):
        assertContains(log_in(campus.pupil_x).get("/"), "Hello, Pia")

    def test_the_home_page_answers_only_get(self, campus, log_in):
        assert log_in(campus.pupil_x).post("/").status_code == 405


def _expected_status(person: str, allowed: bool) -> int:
    if person == "inactive_pupil_x":
        return 302  # the session no longer logs them in
    return 200 if allowed else 404


class TestClassPage:
    @pytest.mark.parametrize(("person", "class_name", "allowed"), ACCESS_CASES)
    def test_a_class_page_opens_for_its_school_admins_and_roster_and_is_404_for_others(
        self, campus, log_in, person, class_name, allowed
    ):
        response = log_in(campus.person(person)).get(class_url(getattr(campus, class_name)))
        assert response.status_code == _expected_status(person, allowed)

    @pytest.mark.parametrize(
        "class_id", ["0", "-1", "9223372036854775808", "99999999999999999999999", "1e3", "%00"]
    )
    def test_a_hostile_class_id_is_404_never_500(self, campus, log_in, class_id):
        client = log_in(campus.admin_a)
        client.raise_request_exception = False
        assert client.get(f"/classes/{class_id}/").status_code == 404

    def test_a_missing_class_is_404_like_a_foreign_one(self, campus, log_in):
        client = log_in(campus.pupil_x)
        missing = client.get("/classes/999999999/")
        foreign = client.get(class_url(campus.class_z))
        assert missing.status_code == foreign.status_code == 404
        assert missing.content == foreign.content

    def test_a_class_page_shows_the_roster_teachers_first(self, campus, log_in):
        response = log_in(campus.admin_a).get(class_url(campus.class_x))
        assertContains(response, '<h1 class="page-title">5X Maths</h1>', html=True)
        roster = response.content.decode().split("Roster", 1)[1]
        assert roster.index("Theo Xenakis") < roster.index("Pia Xavier")
        assertContains(response, "Ecole A")

    def test_a_class_page_lists_upcoming_lessons_with_a_join_button(self, campus, log_in):
        response = log_in(campus.pupil_x).get(class_url(campus.class_x))
        assertContains(response, "Upcoming lessons")
        assertContains(response, join_link(campus.lesson_x))

    def test_the_school_admin_sees_a_class_they_do_not_teach(self, campus, log_in):
        response = log_in(campus.admin_a).get(class_url(campus.class_y))
        assertContains(response, "5Y French")
        assertContains(response, "Paul Yates")


class TestJoinButton:
    """Join is a live link from 10 minutes before the start until the end, disabled otherwise."""

    @pytest.fixture
    def lesson(self, campus, frozen_now) -> Lesson:
        lesson: Lesson = LessonFactory.create(
            school_class=campus.class_x,
            title="Later",
            starts_at=frozen_now + timedelta(hours=1),
            ends_at=frozen_now + timedelta(hours=2),
        )
        return lesson

    def _class_page(self, campus: Campus, log_in: Any) -> Any:
        return log_in(campus.pupil_x).get(class_url(campus.class_x))

    @pytest.mark.parametrize(
        "offset",
        [timedelta(minutes=-10), timedelta(0), timedelta(minutes=59, seconds=59)],
        ids=["ten minutes before the start", "at the start", "in the last second"],
    )
    def test_join_is_a_link_inside_the_window(self, campus, log_in, lesson, time_machine, offset):
        time_machine.move_to(lesson.starts_at + offset, tick=False)
        assertContains(self._class_page(campus, log_in), join_link(lesson))

    def test_join_is_disabled_and_says_when_it_opens_before_the_window(
        self, campus, log_in, lesson, time_machine
    ):
        time_machine.move_to(lesson.starts_at - timedelta(minutes=10, seconds=1), tick=False)
        response = self._class_page(campus, log_in)
        assertNotContains(response, join_link(lesson))
        # 10:30 UTC is 11:30 in Paris: Join opens at 11:20.
        assertContains(
            response,
            '<span class="btn btn--disabled" aria-disabled="true" '
            'title="Join opens 10 minutes before the start">Opens 11:20</span>',
            html=True,
        )

    def test_join_is_disabled_once_the_lesson_is_over(self, campus, log_in, lesson, time_machine):
        lesson.state = LessonState.LIVE
        lesson.save()
        time_machine.move_to(lesson.ends_at - timedelta(seconds=1), tick=False)
        assertContains(self._class_page(campus, log_in), join_link(lesson))
        time_machine.move_to(lesson.ends_at, tick=False)
        home = log_in(campus.pupil_x).get("/")
        assertNotContains(home, join_link(lesson))
        assertContains(
            home, '<span class="btn btn--disabled" aria-disabled="true">Ended</span>', html=True
        )
        lesson_page = log_in(campus.pupil_x).get(lesson_url(lesson))
        assertNotContains(lesson_page, "data-lesson-room")
        assertContains(lesson_page, "This lesson is not open now.")

    def test_join_is_disabled_for_a_cancelled_lesson(self, campus, log_in, lesson, time_machine):
        lesson.state = LessonState.CANCELLED
        lesson.save()
        time_machine.move_to(lesson.starts_at, tick=False)
        assertNotContains(self._class_page(campus, log_in), "Later")
        # The pupil's day still shows it, called off.
        response = log_in(campus.pupil_x).get("/")
        assertNotContains(response, join_link(lesson))
        assertContains(
            response,
            '<span class="btn btn--disabled" aria-disabled="true">Cancelled</span>',
            html=True,
        )
        lesson_page = log_in(campus.pupil_x).get(lesson_url(lesson))
        assertNotContains(lesson_page, "data-lesson-room")

    def test_an_ended_lesson_in_its_hour_says_ended(self, campus, log_in, frozen_now):
        lesson = LessonFactory.create(
            school_class=campus.class_x,
            starts_at=frozen_now - timedelta(minutes=1),
            state=LessonState.ENDED,
        )
        response = log_in(campus.pupil_x).get("/")
        assertNotContains(response, join_link(lesson))
        assertContains(
            response, '<span class="btn btn--disabled" aria-disabled="true">Ended</span>', html=True
        )


class TestLessonPage:
    @pytest.mark.parametrize(("person", "class_name", "allowed"), ACCESS_CASES)
    def test_a_lesson_page_opens_for_its_school_admins_and_roster_and_is_404_for_others(
        self, campus, log_in, person, class_name, allowed
    ):
        lesson = getattr(campus, class_name.replace("class", "lesson"))
        response = log_in(campus.person(person)).get(lesson_url(lesson))
        assert response.status_code == _expected_status(person, allowed)

    def test_an_unknown_key_is_404_like_a_foreign_lesson(self, campus, log_in):
        client = log_in(campus.pupil_x)
        missing = client.get("/lessons/no-such-key/")
        foreign = client.get(lesson_url(campus.lesson_z))
        assert missing.status_code == foreign.status_code == 404
        assert missing.content == foreign.content

    @pytest.mark.parametrize(
        "key",
        ["%00", "a%00b", "x" * 2000, "%F0%9F%8E%93", "..", "a%20b"],
        ids=["a NUL byte", "a NUL inside", "a very long key", "an emoji", "dots", "a space"],
    )
    def test_a_hostile_lesson_key_is_404_never_500(self, campus, log_in, key):
        client = log_in(campus.pupil_x)
        client.raise_request_exception = False
        assert client.get(f"/lessons/{key}/").status_code == 404

    @pytest.mark.parametrize("person", ["pupil_x", "teacher_x"])
    def test_someone_on_the_roster_gets_the_room_while_the_lesson_is_open(
        self, campus, log_in, person
    ):
        response = log_in(campus.person(person)).get(lesson_url(campus.lesson_x))
        assertContains(response, f'data-ws-path="/ws/lessons/{campus.lesson_x.key}/"')
        assertContains(response, "/static/classrooms/lesson.js")

    def test_someone_on_the_roster_is_told_when_the_lesson_is_not_open(
        self, campus, log_in, frozen_now
    ):
        later = LessonFactory.create(
            school_class=campus.class_x, starts_at=frozen_now + timedelta(hours=1)
        )
        response = log_in(campus.pupil_x).get(lesson_url(later))
        assertContains(response, "This lesson is not open now.")
        assertNotContains(response, "data-lesson-room")

    def test_the_school_admin_reads_a_lesson_but_gets_no_room(self, campus, log_in):
        response = log_in(campus.admin_a).get(lesson_url(campus.lesson_x))
        assertContains(response, "only its teachers and pupils join it")
        assertNotContains(response, "data-lesson-room")
        assertNotContains(response, "lesson.js")


# --- Query counts ---------------------------------------------------------------------------------

# Every home page: session, user, the nav's memberships (which links it shows), roles, schools
# (5). Then per role: the pupil's week (1); the teacher's classes and next lessons (2); the admin's
# people counts, lessons this week, live lessons, class count, class list and the class list's
# teachers (6); the guardian's wards and their lessons today (2).
HOME_QUERIES = {
    "pupil_x": 5 + 1,
    "teacher_x": 5 + 2,
    "admin_a": 5 + 6,
    "guardian_a": 5 + 2,
    "teacher_admin": 5 + 2 + 6,
}


def _viewer(campus: Campus, person: str) -> User:
    if person == "teacher_admin":
        Membership.objects.get_or_create(
            user=campus.teacher_x, school=campus.school_a, role=Role.ADMIN
        )
        return campus.teacher_x
    return campus.person(person)


def _count_queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries.captured_queries)


@pytest.mark.parametrize("person", list(HOME_QUERIES))
def test_a_home_page_costs_a_fixed_number_of_queries_however_big_the_school(
    campus, log_in, django_assert_num_queries, person
):
    """Ten times more classes, pupils and lessons cost not one more query on any home page."""
    client = log_in(_viewer(campus, person))
    grow_school(campus, classes=2, pupils=3, lessons=3)
    with django_assert_num_queries(HOME_QUERIES[person]):
        small = client.get("/")
    grow_school(campus, classes=18, pupils=30, lessons=30)
    big = _count_queries(client, "/")
    assert big == HOME_QUERIES[person]
    # The new rows do show on the page: the count held because the page is built in bulk.
    assert len(client.get("/").content) > len(small.content)


def test_a_class_page_costs_a_fixed_number_of_queries_however_big_the_class(campus, log_in):
    client = log_in(campus.pupil_x)
    small = _count_queries(client, class_url(campus.class_x))
    users = User.objects.bulk_create(
        User(email=f"more{n}@school.test", given_name=f"More{n}") for n in range(60)
    )
    Enrollment.objects.bulk_create(
        Enrollment(school=campus.school_a, school_class=campus.class_x, user=user, role="pupil")
        for user in users
    )
    for n in range(15):
        LessonFactory.create(
            school_class=campus.class_x, starts_at=campus.lesson_x.ends_at + timedelta(n)
        )
    assert _count_queries(client, class_url(campus.class_x)) == small


def test_the_login_page_logs_in_a_pupil_who_then_sees_their_week(campus, client):
    """Through the form, end to end: log in, land on the home page, see today's lesson."""
    response = client.post(
        "/accounts/login/", {"username": campus.pupil_x.email, "password": PASSWORD}, follow=True
    )
    assertContains(response, "My week</h2>")
    assertContains(response, join_link(campus.lesson_x))


def test_a_user_who_runs_a_second_school_sees_both_schools(campus, log_in):
    Membership.objects.create(user=campus.admin_a, school=campus.school_b, role=Role.ADMIN)
    response = log_in(campus.admin_a).get("/")
    assertContains(response, "Ecole A")
    assertContains(response, "Ecole B")
    assertContains(response, f'href="{class_url(campus.class_z)}"')
