"""The domain's rules that live on the rows: constraints, lesson keys and the join window."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import Membership, Role
from classrooms.models import EnrollmentRole, Lesson, LessonState, Term
from tests.factories import (
    CourseFactory,
    EnrollmentFactory,
    LessonFactory,
    MembershipFactory,
    SchoolClassFactory,
    SchoolFactory,
    TermFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

START = datetime(2025, 3, 12, 9, 0, tzinfo=UTC)
END = START + timedelta(minutes=55)


class TestLesson:
    def test_a_lesson_must_end_after_it_starts(self):
        """A lesson that ends when it starts is refused by the database."""
        school_class = SchoolClassFactory.create()
        with pytest.raises(IntegrityError), transaction.atomic():
            LessonFactory.create(school_class=school_class, starts_at=START, ends_at=START)

    def test_a_lesson_cannot_end_before_it_starts(self):
        school_class = SchoolClassFactory.create()
        with pytest.raises(IntegrityError), transaction.atomic():
            LessonFactory.create(
                school_class=school_class, starts_at=START, ends_at=START - timedelta(minutes=1)
            )

    def test_a_lesson_state_outside_the_four_states_is_refused(self):
        with pytest.raises(IntegrityError), transaction.atomic():
            LessonFactory.create(state="paused")

    def test_lesson_keys_are_long_url_safe_and_differ(self):
        """Keys carry 128 random bits: 22 URL-safe characters, a fresh one for every lesson."""
        keys = {LessonFactory.create().key for _ in range(50)}
        assert len(keys) == 50
        for key in keys:
            assert len(key) >= 22
            assert re.fullmatch(r"[A-Za-z0-9_-]+", key)

    def test_a_lesson_key_is_not_derived_from_its_id_or_class(self):
        school_class = SchoolClassFactory.create()
        first = LessonFactory.create(school_class=school_class)
        second = LessonFactory.create(school_class=school_class)
        assert str(first.pk) not in (first.key, second.key)
        assert first.key[:8] != second.key[:8]

    def test_a_lesson_of_a_class_of_another_school_does_not_validate(self):
        lesson = LessonFactory.build(
            school_class=SchoolClassFactory.create(),
            school=SchoolFactory.create(),
            starts_at=START,
            ends_at=END,
        )
        with pytest.raises(ValidationError) as raised:
            lesson.full_clean()
        assert "school_class" in raised.value.message_dict


class TestJoinWindow:
    """Join is live from 10 minutes before the start until the end, unless called off or over."""

    @pytest.fixture
    def lesson(self) -> Lesson:
        lesson: Lesson = LessonFactory.build(starts_at=START, ends_at=END)
        return lesson

    @pytest.mark.parametrize(
        ("moment", "joinable"),
        [
            pytest.param(START - timedelta(minutes=10, seconds=1), False, id="just too early"),
            pytest.param(START - timedelta(minutes=10), True, id="ten minutes before the start"),
            pytest.param(START, True, id="at the start"),
            pytest.param(END - timedelta(seconds=1), True, id="the last second"),
            pytest.param(END, False, id="at the end"),
            pytest.param(END + timedelta(hours=1), False, id="an hour after the end"),
            pytest.param(START - timedelta(days=1), False, id="the day before"),
        ],
    )
    def test_a_scheduled_lesson_is_joinable_only_inside_its_window(
        self, lesson, time_machine, moment, joinable
    ):
        time_machine.move_to(moment, tick=False)
        assert lesson.is_joinable() is joinable

    def test_a_live_lesson_is_joinable_inside_its_window(self, lesson, time_machine):
        lesson.state = LessonState.LIVE
        time_machine.move_to(START + timedelta(minutes=3), tick=False)
        assert lesson.is_joinable()
        assert lesson.is_live()

    @pytest.mark.parametrize("state", [LessonState.CANCELLED, LessonState.ENDED])
    def test_a_cancelled_or_ended_lesson_is_never_joinable(self, lesson, time_machine, state):
        lesson.state = state
        time_machine.move_to(START + timedelta(minutes=3), tick=False)
        assert not lesson.is_joinable()

    def test_a_live_lesson_past_its_end_is_neither_live_nor_joinable(self, lesson, time_machine):
        lesson.state = LessonState.LIVE
        time_machine.move_to(END + timedelta(minutes=1), tick=False)
        assert not lesson.is_live()
        assert not lesson.is_joinable()

    def test_the_window_opens_ten_minutes_before_the_start(self, lesson):
        assert lesson.join_opens_at == START - timedelta(minutes=10)

    def test_an_explicit_moment_overrides_the_clock(self, lesson):
        assert lesson.is_joinable(START)
        assert not lesson.is_joinable(END)


class TestTerm:
    def test_a_term_cannot_end_before_it_starts(self):
        with pytest.raises(IntegrityError), transaction.atomic():
            TermFactory.create(starts_on=date(2025, 9, 1), ends_on=date(2025, 8, 31))

    def test_a_term_may_last_a_single_day(self):
        term = TermFactory.create(starts_on=date(2025, 9, 1), ends_on=date(2025, 9, 1))
        assert Term.objects.filter(pk=term.pk).exists()

    def test_two_terms_of_a_school_cannot_share_a_name(self):
        term = TermFactory.create(name="2025-2026")
        with pytest.raises(IntegrityError), transaction.atomic():
            TermFactory.create(school=term.school, name="2025-2026")

    def test_two_schools_may_name_their_terms_alike(self):
        TermFactory.create(name="2025-2026")
        TermFactory.create(name="2025-2026")
        assert Term.objects.filter(name="2025-2026").count() == 2


class TestSchoolAndClass:
    def test_a_school_needs_a_known_time_zone(self):
        school = SchoolFactory.build(time_zone="Mars/Olympus_Mons")
        with pytest.raises(ValidationError) as raised:
            school.full_clean()
        assert "time_zone" in raised.value.message_dict

    def test_a_school_with_a_real_time_zone_validates(self):
        school = SchoolFactory.build(time_zone="America/Montreal")
        school.full_clean()
        assert school.tzinfo.key == "America/Montreal"

    def test_a_class_cannot_use_another_school_s_term(self):
        school = SchoolFactory.create()
        school_class = SchoolClassFactory.build(
            school=school, term=TermFactory.create(), course=CourseFactory.create(school=school)
        )
        with pytest.raises(ValidationError) as raised:
            school_class.clean()
        assert "term" in raised.value.message_dict

    def test_a_class_cannot_use_another_school_s_course(self):
        school = SchoolFactory.create()
        school_class = SchoolClassFactory.build(
            school=school, term=TermFactory.create(school=school), course=CourseFactory.create()
        )
        with pytest.raises(ValidationError) as raised:
            school_class.clean()
        assert "course" in raised.value.message_dict

    def test_two_courses_of_a_school_cannot_share_a_code(self):
        course = CourseFactory.create(code="MATH")
        with pytest.raises(IntegrityError), transaction.atomic():
            CourseFactory.create(school=course.school, code="MATH")


class TestMembership:
    def test_a_user_holds_a_role_in_a_school_once(self):
        membership = MembershipFactory.create(role=Role.TEACHER)
        with pytest.raises(IntegrityError), transaction.atomic():
            MembershipFactory.create(
                user=membership.user, school=membership.school, role=Role.TEACHER
            )

    def test_a_teacher_may_also_be_the_school_s_admin(self):
        membership = MembershipFactory.create(role=Role.TEACHER)
        MembershipFactory.create(user=membership.user, school=membership.school, role=Role.ADMIN)
        roles = set(
            Membership.objects.filter(user=membership.user, school=membership.school).values_list(
                "role", flat=True
            )
        )
        assert roles == {Role.TEACHER, Role.ADMIN}

    def test_a_user_may_hold_the_same_role_in_two_schools(self):
        user = UserFactory.create()
        MembershipFactory.create(user=user, role=Role.TEACHER)
        MembershipFactory.create(user=user, role=Role.TEACHER)
        assert user.memberships.count() == 2

    def test_a_role_outside_the_four_roles_is_refused(self):
        with pytest.raises(IntegrityError), transaction.atomic():
            MembershipFactory.create(role="janitor")


class TestEnrollment:
    def test_a_user_is_on_a_class_roster_once(self):
        enrollment = EnrollmentFactory.create(role=EnrollmentRole.PUPIL)
        with pytest.raises(IntegrityError), transaction.atomic():
            EnrollmentFactory.create(
                user=enrollment.user,
                school_class=enrollment.school_class,
                role=EnrollmentRole.PUPIL,
            )

    def test_a_teacher_of_a_class_is_not_also_its_pupil(self):
        enrollment = EnrollmentFactory.create(role=EnrollmentRole.TEACHER)
        with pytest.raises(IntegrityError), transaction.atomic():
            EnrollmentFactory.create(
                user=enrollment.user,
                school_class=enrollment.school_class,
                role=EnrollmentRole.PUPIL,
            )

    def test_an_enrollment_role_is_teacher_or_pupil(self):
        with pytest.raises(IntegrityError), transaction.atomic():
            EnrollmentFactory.create(role="guardian")

    def test_an_enrollment_in_a_class_of_another_school_does_not_validate(self):
        enrollment = EnrollmentFactory.build(
            school_class=SchoolClassFactory.create(),
            school=SchoolFactory.create(),
            user=UserFactory.create(),
        )
        with pytest.raises(ValidationError) as raised:
            enrollment.clean()
        assert "school_class" in raised.value.message_dict
