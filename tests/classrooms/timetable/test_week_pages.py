"""The week pages, through the test client: my week (as pupil, teacher, or both), a class's
week, and the school admin's day of every lesson.

Days and times are the school's (Paris here); a week starts on Monday; `?week=` takes any day
and shows that day's week. Anything outside the user's school or roster answers 404.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from accounts.models import CalendarFeed, Membership, Role
from classrooms.models import Course, EnrollmentRole, Lesson, LessonState
from classrooms.timetable.colors import PALETTE
from tests.classrooms.matrix import CLASS_ACCESS
from tests.factories import (
    Campus,
    EnrollmentFactory,
    LessonFactory,
    MembershipFactory,
    SchoolClassFactory,
    SchoolFactory,
    member,
    pupil_of,
)

pytestmark = pytest.mark.django_db

WEEK = "/week/"


def class_week_url(school_class) -> str:
    return f"/classes/{school_class.pk}/week/"


def day_url(school) -> str:
    return f"/school/{school.pk}/day/"


def join_link(lesson: Lesson) -> str:
    return f'<a class="btn btn--join" href="/lessons/{lesson.key}/"'


def lesson_on(campus: Campus, when: datetime, *, school_class=None, **fields) -> Lesson:
    lesson: Lesson = LessonFactory.create(
        school_class=school_class or campus.class_x, starts_at=when, **fields
    )
    return lesson


class TestMyWeek:
    def test_an_anonymous_visitor_is_sent_to_the_login_page(self, client):
        assertRedirects(
            client.get(WEEK), f"/accounts/login/?next={WEEK}", fetch_redirect_response=False
        )

    def test_a_pupil_sees_the_week_with_today_marked_and_join_on_the_lesson_on_now(
        self, campus, log_in
    ):
        response = log_in(campus.pupil_x).get(WEEK)
        assertContains(response, "My week")
        assertContains(response, "10 March to 16 March 2025")
        assertContains(response, 'data-testid="week-today"', count=1)
        assertContains(response, 'aria-current="date"', count=1)
        assertContains(response, "Wednesday 12 March")
        assertContains(response, "Fractions")
        assertContains(response, "5X Maths")
        assertContains(response, "Theo Xenakis")
        assertContains(response, join_link(campus.lesson_x), count=1)

    def test_times_are_shown_in_the_school_s_time_zone(self, campus, log_in):
        """09:25-10:20 UTC is 10:25-11:20 in Paris in March (before the change to summer)."""
        response = log_in(campus.pupil_x).get(WEEK)
        assertContains(response, ">10:25</time>")
        assertContains(response, ">11:20</time>")

    def test_the_live_lesson_is_marked(self, campus, log_in):
        Lesson.objects.filter(pk=campus.lesson_x.pk).update(state=LessonState.LIVE)
        response = log_in(campus.pupil_x).get(WEEK)
        assertContains(response, "tt-lesson--live", count=1)
        assertContains(response, "Live now")

    def test_a_cancelled_lesson_is_struck_through_and_cannot_be_joined(
        self, campus, log_in, frozen_now
    ):
        called_off = lesson_on(
            campus, frozen_now + timedelta(hours=1), title="Called off", state=LessonState.CANCELLED
        )
        response = log_in(campus.pupil_x).get(WEEK)
        assertContains(response, "<del>Called off</del>", html=True)
        assertContains(response, "tt-lesson--cancelled", count=1)
        assertNotContains(response, join_link(called_off))

    def test_join_opens_ten_minutes_before_the_start(
        self, campus, log_in, frozen_now, time_machine
    ):
        later = lesson_on(campus, frozen_now + timedelta(hours=2), title="Decimals")
        client = log_in(campus.pupil_x)
        # 11:30 UTC is 12:30 in Paris; Join opens at 12:20.
        assertContains(client.get(WEEK), "Opens 12:20")
        time_machine.move_to(later.starts_at - timedelta(minutes=10, seconds=1), tick=False)
        assertNotContains(client.get(WEEK), join_link(later))
        time_machine.move_to(later.starts_at - timedelta(minutes=10), tick=False)
        assertContains(client.get(WEEK), join_link(later))
        time_machine.move_to(later.ends_at - timedelta(seconds=1), tick=False)
        assertContains(client.get(WEEK), join_link(later))
        time_machine.move_to(later.ends_at, tick=False)
        assertNotContains(client.get(WEEK), join_link(later))

    def test_lessons_on_other_days_show_no_join_button(self, campus, log_in, frozen_now):
        lesson_on(campus, frozen_now + timedelta(days=1), title="Thursday lesson")
        response = log_in(campus.pupil_x).get(WEEK)
        assertContains(response, "Thursday lesson")
        assertContains(response, 'class="tt-lesson__action"', count=1)

    def test_a_pupil_sees_neither_other_classes_nor_other_schools(self, campus, log_in):
        response = log_in(campus.pupil_x).get(WEEK)
        for foreign in ("Verbs", "5Y French", "Angles", "5Z Maths", "Ecole B"):
            assertNotContains(response, foreign)

    def test_a_teacher_sees_the_lessons_they_teach(self, campus, log_in):
        response = log_in(campus.teacher_x).get(WEEK)
        assertContains(response, "Lessons you teach")
        assertContains(response, "Fractions")
        # Every lesson of a teacher's own week is theirs: no need to say so on each.
        assertNotContains(response, "You teach")
        assertContains(response, join_link(campus.lesson_x))
        assertNotContains(response, "Verbs")

    def test_a_teacher_who_is_also_a_pupil_sees_both_in_one_week(self, campus, log_in):
        Membership.objects.create(user=campus.teacher_x, school=campus.school_a, role=Role.PUPIL)
        EnrollmentFactory.create(
            user=campus.teacher_x, school_class=campus.class_y, role=EnrollmentRole.PUPIL
        )
        response = log_in(campus.teacher_x).get(WEEK)
        assertContains(response, "Lessons you teach and lessons you take")
        assertContains(response, "Fractions")
        assertContains(response, "Verbs")
        # Only the lesson they teach says so.
        assertContains(response, "You teach", count=1)

    def test_someone_in_two_schools_sees_each_school_s_week(self, campus, log_in):
        Membership.objects.create(user=campus.pupil_x, school=campus.school_b, role=Role.PUPIL)
        EnrollmentFactory.create(user=campus.pupil_x, school_class=campus.class_z)
        response = log_in(campus.pupil_x).get(WEEK)
        assertContains(response, "Ecole A")
        assertContains(response, "Ecole B")
        assertContains(response, "Angles")

    def test_an_admin_without_lessons_is_sent_to_the_day_view(self, campus, log_in):
        response = log_in(campus.admin_a).get(WEEK)
        assertContains(response, "You have no lessons of your own")
        assertContains(response, f'href="{day_url(campus.school_a)}"')
        assertNotContains(response, "text/calendar")
        assert not CalendarFeed.objects.filter(user=campus.admin_a).exists()

    def test_a_guardian_keeps_the_child_view(self, campus, log_in):
        response = log_in(campus.guardian_a).get(WEEK)
        assertContains(response, 'href="/children/"')
        assertNotContains(response, "Fractions")

    def test_a_pupil_who_left_the_school_sees_no_lessons(self, campus, log_in):
        response = log_in(campus.leaver_x).get(WEEK)
        assertNotContains(response, "Fractions")


class TestWeekNavigation:
    def test_any_day_of_a_week_shows_that_week_from_its_monday(self, campus, log_in, frozen_now):
        lesson_on(campus, frozen_now + timedelta(days=7), title="Next week's lesson")
        response = log_in(campus.pupil_x).get(WEEK, {"week": "2025-03-19"})
        assertContains(response, "17 March to 23 March 2025")
        assertContains(response, "Next week&#x27;s lesson")
        assertNotContains(response, "Fractions")
        assertContains(response, 'href="?week=2025-03-10"')
        assertContains(response, 'href="?week=2025-03-24"')
        assertContains(response, "This week")
        assertNotContains(response, 'data-testid="week-today"')

    def test_this_week_has_no_this_week_link(self, campus, log_in):
        response = log_in(campus.pupil_x).get(WEEK, {"week": "2025-03-10"})
        assertContains(response, 'href="?week=2025-03-03"')
        assertNotContains(response, ">This week<")

    @pytest.mark.parametrize("raw", ["garbage", "2025-13-40", "9999-12-31", "0001-01-01", ""])
    def test_a_malformed_or_absurd_week_shows_this_week(self, campus, log_in, raw):
        response = log_in(campus.pupil_x).get(WEEK, {"week": raw})
        assertContains(response, "10 March to 16 March 2025")

    def test_the_week_of_the_change_to_summer_time_keeps_local_times(self, campus, log_in):
        """Paris moves to summer time on Sunday 30 March 2025. A 09:00 lesson on Friday (08:00
        UTC) and one on Sunday (07:00 UTC) both show 09:00, and a lesson late on Sunday evening
        belongs to that Sunday, not to the next week."""
        friday = lesson_on(campus, datetime(2025, 3, 28, 8, tzinfo=UTC), title="Friday")
        sunday = lesson_on(campus, datetime(2025, 3, 30, 7, tzinfo=UTC), title="Sunday")
        late = lesson_on(
            campus,
            datetime(2025, 3, 30, 21, 30, tzinfo=UTC),
            title="Late",
            ends_at=datetime(2025, 3, 30, 21, 50, tzinfo=UTC),
        )
        lesson_on(campus, datetime(2025, 3, 30, 22, 30, tzinfo=UTC), title="Following Monday")
        response = log_in(campus.pupil_x).get(WEEK, {"week": "2025-03-26"})
        assertContains(response, "24 March to 30 March 2025")
        assertContains(response, ">09:00</time>", count=2)
        assertContains(response, ">23:30</time>")
        assertContains(response, "Sunday 30 March")
        for lesson in (friday, sunday, late):
            assertContains(response, lesson.title)
        assertNotContains(response, "Following Monday")


class TestColours:
    def test_a_course_s_own_colour_colours_its_lessons_with_readable_ink(self, campus, log_in):
        Course.objects.filter(pk=campus.class_x.course_id).update(color="#FFCC00")
        response = log_in(campus.pupil_x).get(WEEK)
        assertContains(response, "--course: #ffcc00; --course-ink: #000000")

    def test_a_course_without_a_colour_gets_a_stable_palette_colour(self, campus, log_in):
        expected = PALETTE[campus.class_x.course_id % len(PALETTE)]
        client = log_in(campus.pupil_x)
        assertContains(client.get(WEEK), f"--course: {expected}; --course-ink: #ffffff")
        assertContains(client.get(WEEK, {"week": "2025-03-03"}), "My week")
        assertContains(client.get(class_week_url(campus.class_x)), f"--course: {expected};")

    def test_two_courses_get_different_colours(self, campus, log_in):
        other = SchoolClassFactory.create(school=campus.school_a, name="5X Art")
        EnrollmentFactory.create(user=campus.pupil_x, school_class=other)
        lesson_on(campus, campus.lesson_x.ends_at, school_class=other, title="Drawing")
        colours = {
            PALETTE[campus.class_x.course_id % len(PALETTE)],
            PALETTE[other.course_id % len(PALETTE)],
        }
        assert len(colours) == 2
        response = log_in(campus.pupil_x).get(WEEK)
        for colour in colours:
            assertContains(response, f"--course: {colour};")


class TestClassWeek:
    @pytest.mark.parametrize("person", sorted(CLASS_ACCESS))
    @pytest.mark.parametrize("class_name", ["class_x", "class_y", "class_z"])
    def test_a_class_s_week_opens_for_exactly_those_who_may_open_the_class(
        self, campus, log_in, person, class_name
    ):
        school_class = getattr(campus, class_name)
        user = campus.person(person)
        if not user.is_active:
            return  # a deactivated session is logged out before any page (tested in test_pages)
        response = log_in(user).get(class_week_url(school_class))
        assert response.status_code == (200 if class_name in CLASS_ACCESS[person] else 404)

    def test_an_unknown_class_answers_404(self, campus, log_in):
        assert log_in(campus.admin_a).get("/classes/999999/week/").status_code == 404

    def test_the_roster_joins_from_the_class_week(self, campus, log_in):
        for person in (campus.pupil_x, campus.teacher_x):
            response = log_in(person).get(class_week_url(campus.class_x))
            assertContains(response, "5X Maths: the week")
            assertContains(response, "Theo Xenakis")
            assertContains(response, join_link(campus.lesson_x))

    def test_the_school_admin_reads_the_class_week_without_join(self, campus, log_in):
        response = log_in(campus.admin_a).get(class_week_url(campus.class_x))
        assertContains(response, "Fractions")
        assertNotContains(response, join_link(campus.lesson_x))

    def test_the_class_week_navigates_by_week(self, campus, log_in, frozen_now):
        lesson_on(campus, frozen_now - timedelta(days=7), title="Last week's lesson")
        response = log_in(campus.pupil_x).get(
            class_week_url(campus.class_x), {"week": "2025-03-05"}
        )
        assertContains(response, "3 March to 9 March 2025")
        assertContains(response, "Last week&#x27;s lesson")
        assertNotContains(response, "Fractions")

    def test_the_class_page_links_to_its_week(self, campus, log_in):
        response = log_in(campus.pupil_x).get(f"/classes/{campus.class_x.pk}/")
        assertContains(response, f'href="{class_week_url(campus.class_x)}"')


class TestSchoolDay:
    @pytest.mark.parametrize(
        ("person", "school", "status"),
        [
            ("admin_a", "school_a", 200),
            ("admin_b", "school_b", 200),
            ("admin_a", "school_b", 404),
            ("admin_b", "school_a", 404),
            ("teacher_x", "school_a", 404),
            ("pupil_x", "school_a", 404),
            ("guardian_a", "school_a", 404),
            ("outsider", "school_a", 404),
        ],
    )
    def test_only_the_school_s_admins_see_its_day(self, campus, log_in, person, school, status):
        response = log_in(campus.person(person)).get(day_url(getattr(campus, school)))
        assert response.status_code == status

    def test_an_unknown_school_answers_404(self, campus, log_in):
        assert log_in(campus.admin_a).get("/school/999999/day/").status_code == 404

    def test_a_deactivated_admin_sees_nothing(self, campus, log_in):
        Membership.objects.filter(user=campus.admin_a).update(
            deactivated_at=campus.lesson_x.starts_at
        )
        assert log_in(campus.admin_a).get(day_url(campus.school_a)).status_code == 404

    def test_the_admin_sees_every_lesson_of_the_school_today_and_no_other(
        self, campus, log_in, frozen_now
    ):
        Lesson.objects.filter(pk=campus.lesson_x.pk).update(state=LessonState.LIVE)
        lesson_on(
            campus,
            frozen_now + timedelta(hours=3),
            school_class=campus.class_y,
            title="Called off",
            state=LessonState.CANCELLED,
        )
        lesson_on(campus, frozen_now + timedelta(days=1), title="Tomorrow")
        response = log_in(campus.admin_a).get(day_url(campus.school_a))
        assertContains(response, "Lessons on Wednesday 12 March 2025")
        assertContains(response, "3 lessons")
        assertContains(response, "1 live now")
        assertContains(response, "1 cancelled")
        for shown in ("Fractions", "Verbs", "Theo Xenakis", "Tess Young", "<del>Called off</del>"):
            assertContains(response, shown)
        assertContains(response, "tt-row--live", count=1)
        for hidden in ("Tomorrow", "Angles", "Ecole B"):
            assertNotContains(response, hidden)

    def test_the_admin_moves_from_day_to_day(self, campus, log_in, frozen_now):
        lesson_on(campus, frozen_now + timedelta(days=1), title="Tomorrow")
        response = log_in(campus.admin_a).get(day_url(campus.school_a), {"date": "2025-03-13"})
        assertContains(response, "Lessons on Thursday 13 March 2025")
        assertContains(response, "Tomorrow")
        assertNotContains(response, "Fractions")
        assertContains(response, 'href="?date=2025-03-12"')
        assertContains(response, 'href="?date=2025-03-14"')

    def test_the_short_day_of_the_change_to_summer_time_holds_its_late_lessons(
        self, campus, log_in
    ):
        """30 March 2025 lasts 23 hours in Paris: 23:30 local is 21:30 UTC, and 00:30 the next
        day (22:30 UTC) belongs to Monday."""
        lesson_on(
            campus,
            datetime(2025, 3, 30, 21, 30, tzinfo=UTC),
            title="Late Sunday",
            ends_at=datetime(2025, 3, 30, 21, 50, tzinfo=UTC),
        )
        lesson_on(campus, datetime(2025, 3, 30, 22, 30, tzinfo=UTC), title="Early Monday")
        response = log_in(campus.admin_a).get(day_url(campus.school_a), {"date": "2025-03-30"})
        assertContains(response, "Late Sunday")
        assertContains(response, ">23:30</time>")
        assertNotContains(response, "Early Monday")

    def test_an_empty_day_says_so(self, campus, log_in):
        response = log_in(campus.admin_a).get(day_url(campus.school_a), {"date": "2025-03-16"})
        assertContains(response, "No lessons on this day.")


class TestHomeLinks:
    def test_pupils_teachers_and_admins_find_their_timetable_from_home(self, campus, log_in):
        assertContains(log_in(campus.pupil_x).get("/"), f'href="{WEEK}"')
        assertContains(log_in(campus.teacher_x).get("/"), f'href="{WEEK}"')
        assertContains(log_in(campus.admin_a).get("/"), f'href="{day_url(campus.school_a)}"')


def test_a_pupil_of_no_class_has_an_empty_week(campus, log_in):
    loner = member(campus.school_a, Role.PUPIL)
    response = log_in(loner).get(WEEK)
    assertContains(response, "0 lessons")
    assertContains(response, "Free")


def test_a_new_pupil_has_lessons_only_from_their_classes(campus, log_in):
    pupil = pupil_of(campus.class_y)
    response = log_in(pupil).get(WEEK)
    assertContains(response, "Verbs")
    assertNotContains(response, "Fractions")


@pytest.mark.parametrize("role", ["pupil", "teacher"])
def test_pupils_and_teachers_find_my_week_in_the_main_navigation(client, role):
    """One "My week" link in the header, even for someone who learns in a second school."""
    school = SchoolFactory.create()
    user = member(school, role, "admin")
    other = SchoolFactory.create()
    MembershipFactory.create(user=user, school=other, role="pupil")
    client.force_login(user)
    page = client.get("/").content.decode()
    nav = page[
        page.index('aria-label="Main"') : page.index("</nav>", page.index('aria-label="Main"'))
    ]
    assert nav.count(">My week</a>") == 1


def test_guardians_and_admins_only_get_no_my_week_link(client):
    school = SchoolFactory.create()
    client.force_login(member(school, "guardian", "admin"))
    page = client.get("/").content.decode()
    assert ">My week</a>" not in page
