"""Who may read what: every `access_*` selector and the lists the pages are built from.

A row outside the user's school or roster must look exactly like a missing row: the same
`NotFound`, with the same message, so that nobody learns that a foreign id exists.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from accounts.models import Membership, Role, User
from classrooms import selectors
from classrooms.exceptions import NotFound
from classrooms.models import EnrollmentRole, LessonState, SchoolClass
from tests.classrooms.matrix import ACCESS_CASES, CLASS_ACCESS, PEOPLE
from tests.factories import (
    EnrollmentFactory,
    LessonFactory,
    SchoolClassFactory,
    admin_of,
    guardian_of,
    pupil_of,
    teacher_of,
)

pytestmark = pytest.mark.django_db


def _ids(rows: Any) -> set[int]:
    return {row.pk for row in rows}


class TestClassesAndLessonsForUser:
    @pytest.mark.parametrize("person", list(PEOPLE), ids=list(PEOPLE.values()))
    def test_classes_for_user_lists_exactly_the_classes_a_user_may_open(self, campus, person):
        expected = {getattr(campus, name).pk for name in CLASS_ACCESS[person]}
        assert _ids(selectors.classes_for_user(campus.person(person))) == expected

    @pytest.mark.parametrize("person", list(PEOPLE), ids=list(PEOPLE.values()))
    def test_lessons_for_user_lists_exactly_the_lessons_of_those_classes(self, campus, person):
        expected = {
            getattr(campus, name.replace("class", "lesson")).pk for name in CLASS_ACCESS[person]
        }
        assert _ids(selectors.lessons_for_user(campus.person(person))) == expected

    def test_an_anonymous_user_has_no_class_and_no_lesson(self, campus):
        anonymous = cast(User, AnonymousUser())
        assert not selectors.classes_for_user(anonymous).exists()
        assert not selectors.lessons_for_user(anonymous).exists()
        assert selectors.roles_by_school(anonymous) == {}
        assert not selectors.schools_for_user(anonymous).exists()

    def test_a_pupil_sees_a_class_once_even_with_two_roles_in_its_school(self, campus):
        Membership.objects.create(user=campus.pupil_x, school=campus.school_a, role=Role.ADMIN)
        classes = list(selectors.classes_for_user(campus.pupil_x))
        assert sorted(c.pk for c in classes) == sorted([campus.class_x.pk, campus.class_y.pk])

    def test_an_enrollment_in_another_school_grants_nothing_without_its_membership(self, campus):
        """A pupil of school A put on class Z's roster does not see class Z."""
        EnrollmentFactory.create(user=campus.pupil_x, school_class=campus.class_z)
        assert _ids(selectors.classes_for_user(campus.pupil_x)) == {campus.class_x.pk}


class TestAccessClassForUser:
    @pytest.mark.parametrize(("person", "class_name", "allowed"), ACCESS_CASES)
    def test_a_class_opens_only_for_its_school_admins_and_its_roster(
        self, campus, person, class_name, allowed
    ):
        school_class = getattr(campus, class_name)
        user = campus.person(person)
        if allowed:
            found = selectors.access_class_for_user(user=user, class_id=school_class.pk)
            assert found == school_class
        else:
            with pytest.raises(NotFound):
                selectors.access_class_for_user(user=user, class_id=school_class.pk)

    def test_a_missing_class_is_not_found(self, campus):
        with pytest.raises(NotFound):
            selectors.access_class_for_user(user=campus.admin_a, class_id=10**9)

    def test_a_foreign_class_and_a_missing_class_fail_alike(self, campus):
        """Nothing in the error tells a foreign class from one that does not exist."""
        with pytest.raises(NotFound) as foreign:
            selectors.access_class_for_user(user=campus.pupil_x, class_id=campus.class_z.pk)
        with pytest.raises(NotFound) as missing:
            selectors.access_class_for_user(user=campus.pupil_x, class_id=10**9)
        assert type(foreign.value) is type(missing.value)
        assert foreign.value.args == missing.value.args

    def test_not_found_is_an_http_404(self):
        assert issubclass(NotFound, Http404)

    def test_the_class_comes_with_its_school_course_and_term(
        self, campus, django_assert_num_queries
    ):
        school_class = selectors.access_class_for_user(
            user=campus.pupil_x, class_id=campus.class_x.pk
        )
        with django_assert_num_queries(0):
            assert school_class.school.name == "Ecole A"
            assert school_class.course.title
            assert school_class.term.name


class TestAccessLessonForUser:
    @pytest.mark.parametrize(("person", "class_name", "allowed"), ACCESS_CASES)
    def test_a_lesson_opens_only_for_its_school_admins_and_its_class_roster(
        self, campus, person, class_name, allowed
    ):
        lesson = getattr(campus, class_name.replace("class", "lesson"))
        user = campus.person(person)
        if allowed:
            assert selectors.access_lesson_for_user(user=user, lesson_key=lesson.key) == lesson
        else:
            with pytest.raises(NotFound):
                selectors.access_lesson_for_user(user=user, lesson_key=lesson.key)

    def test_an_unknown_key_is_not_found(self, campus):
        with pytest.raises(NotFound):
            selectors.access_lesson_for_user(user=campus.admin_a, lesson_key="no-such-lesson-key")

    @pytest.mark.parametrize(
        "key", ["\x00", "a\x00b", "x" * 5000], ids=["NUL", "NUL inside", "long"]
    )
    def test_a_key_no_lesson_could_have_is_not_found(self, campus, key):
        """Keys come from URLs: a NUL byte (which PostgreSQL text refuses) is just not found."""
        with pytest.raises(NotFound):
            selectors.access_lesson_for_user(user=campus.pupil_x, lesson_key=key)

    def test_a_foreign_lesson_and_a_missing_lesson_fail_alike(self, campus):
        with pytest.raises(NotFound) as foreign:
            selectors.access_lesson_for_user(user=campus.pupil_x, lesson_key=campus.lesson_z.key)
        with pytest.raises(NotFound) as missing:
            selectors.access_lesson_for_user(user=campus.pupil_x, lesson_key="x" * 22)
        assert type(foreign.value) is type(missing.value)
        assert foreign.value.args == missing.value.args

    def test_a_cancelled_lesson_of_the_class_can_still_be_read(self, campus):
        lesson = LessonFactory.create(school_class=campus.class_x, state=LessonState.CANCELLED)
        assert (
            selectors.access_lesson_for_user(user=campus.pupil_x, lesson_key=lesson.key) == lesson
        )


class TestAccessSchoolForAdmin:
    def test_a_school_admin_reaches_their_school(self, campus):
        found = selectors.access_school_for_admin(user=campus.admin_a, school_id=campus.school_a.pk)
        assert found == campus.school_a

    def test_a_teacher_who_is_also_admin_reaches_the_school(self, campus):
        Membership.objects.create(user=campus.teacher_x, school=campus.school_a, role=Role.ADMIN)
        found = selectors.access_school_for_admin(
            user=campus.teacher_x, school_id=campus.school_a.pk
        )
        assert found == campus.school_a

    @pytest.mark.parametrize(
        "person",
        ["teacher_x", "pupil_x", "guardian_a", "admin_b", "outsider"],
        ids=["a teacher", "a pupil", "a guardian", "another school's admin", "a user of no school"],
    )
    def test_anyone_but_the_school_s_admin_gets_not_found(self, campus, person):
        with pytest.raises(NotFound):
            selectors.access_school_for_admin(
                user=campus.person(person), school_id=campus.school_a.pk
            )

    def test_a_deactivated_admin_gets_not_found(self, campus):
        admin = admin_of(campus.school_a, is_active=False)
        with pytest.raises(NotFound):
            selectors.access_school_for_admin(user=admin, school_id=campus.school_a.pk)

    def test_a_foreign_school_and_a_missing_school_fail_alike(self, campus):
        with pytest.raises(NotFound) as foreign:
            selectors.access_school_for_admin(user=campus.admin_a, school_id=campus.school_b.pk)
        with pytest.raises(NotFound) as missing:
            selectors.access_school_for_admin(user=campus.admin_a, school_id=10**9)
        assert type(foreign.value) is type(missing.value)
        assert foreign.value.args == missing.value.args


class TestRolesAndSchools:
    def test_roles_are_listed_per_school(self, campus):
        Membership.objects.create(user=campus.teacher_x, school=campus.school_a, role=Role.ADMIN)
        Membership.objects.create(user=campus.teacher_x, school=campus.school_b, role=Role.GUARDIAN)
        assert selectors.roles_by_school(campus.teacher_x) == {
            campus.school_a.pk: frozenset({Role.TEACHER, Role.ADMIN}),
            campus.school_b.pk: frozenset({Role.GUARDIAN}),
        }

    def test_a_deactivated_user_holds_no_role(self, campus):
        assert selectors.roles_by_school(campus.inactive_pupil_x) == {}
        assert not selectors.schools_for_user(campus.inactive_pupil_x).exists()

    def test_schools_are_listed_once_each_by_name(self, campus):
        Membership.objects.create(user=campus.teacher_x, school=campus.school_a, role=Role.ADMIN)
        Membership.objects.create(user=campus.teacher_x, school=campus.school_b, role=Role.GUARDIAN)
        assert list(selectors.schools_for_user(campus.teacher_x)) == [
            campus.school_a,
            campus.school_b,
        ]


class TestRoster:
    def test_the_roster_lists_teachers_first_then_pupils_by_name(self, campus):
        school_class = SchoolClassFactory.create(school=campus.school_a)
        zed = pupil_of(school_class, given_name="Ann", family_name="Zed")
        abel = pupil_of(school_class, given_name="Bob", family_name="Abel")
        teacher = teacher_of(school_class, given_name="Tim", family_name="Young")
        roster = list(selectors.class_roster(school_class=school_class))
        assert [(e.role, e.user) for e in roster] == [
            (EnrollmentRole.TEACHER, teacher),
            (EnrollmentRole.PUPIL, abel),
            (EnrollmentRole.PUPIL, zed),
        ]

    def test_roster_role_says_how_a_user_is_on_a_roster(self, campus):
        assert (
            selectors.roster_role(user=campus.teacher_x, school_class=campus.class_x) == "teacher"
        )
        assert selectors.roster_role(user=campus.pupil_x, school_class=campus.class_x) == "pupil"
        assert selectors.roster_role(user=campus.admin_a, school_class=campus.class_x) is None

    def test_upcoming_lessons_leave_out_past_ended_and_cancelled_ones(self, campus, frozen_now):
        school_class = campus.class_x
        past = LessonFactory.create(
            school_class=school_class,
            starts_at=frozen_now - timedelta(days=1),
            ends_at=frozen_now - timedelta(days=1) + timedelta(hours=1),
        )
        cancelled = LessonFactory.create(school_class=school_class, state=LessonState.CANCELLED)
        ended = LessonFactory.create(
            school_class=school_class,
            state=LessonState.ENDED,
            starts_at=frozen_now + timedelta(days=2),
        )
        later = LessonFactory.create(
            school_class=school_class, starts_at=frozen_now + timedelta(days=3)
        )
        upcoming = selectors.class_upcoming_lessons(school_class=school_class, now=frozen_now)
        assert upcoming == [campus.lesson_x, later]
        assert not {past, cancelled, ended} & set(upcoming)


class TestHomeSelectors:
    def test_a_pupil_s_week_holds_the_lessons_of_their_classes_only(self, campus, frozen_now):
        other_class_lesson = LessonFactory.create(
            school_class=campus.class_y, starts_at=frozen_now + timedelta(hours=2)
        )
        tomorrow = LessonFactory.create(
            school_class=campus.class_x, starts_at=frozen_now + timedelta(days=1)
        )
        next_week = LessonFactory.create(
            school_class=campus.class_x, starts_at=frozen_now + timedelta(days=7)
        )
        week = selectors.pupil_week(user=campus.pupil_x, school=campus.school_a, now=frozen_now)
        lessons = [lesson for day in week for lesson in day.lessons]
        assert lessons == [campus.lesson_x, tomorrow]
        assert other_class_lesson not in lessons
        assert next_week not in lessons

    def test_a_pupil_s_week_runs_monday_to_friday_and_marks_today(self, campus, frozen_now):
        week = selectors.pupil_week(user=campus.pupil_x, school=campus.school_a, now=frozen_now)
        assert [day.date.weekday() for day in week] == [0, 1, 2, 3, 4]
        assert [day.is_today for day in week] == [False, False, True, False, False]
        assert week[2].lessons == (campus.lesson_x,)

    def test_a_weekend_day_appears_when_it_holds_a_lesson(self, campus, frozen_now):
        LessonFactory.create(school_class=campus.class_x, starts_at=frozen_now + timedelta(days=3))
        week = selectors.pupil_week(user=campus.pupil_x, school=campus.school_a, now=frozen_now)
        assert [day.date.weekday() for day in week] == [0, 1, 2, 3, 4, 5]

    def test_a_teacher_s_classes_count_their_pupils(self, campus):
        """A class with one teacher and three pupils shows "3 pupils" to its teacher."""
        school_class = SchoolClassFactory.create(school=campus.school_a, name="6C History")
        teacher = teacher_of(school_class)
        for _ in range(3):
            pupil_of(school_class)
        classes = selectors.teacher_classes(user=teacher, school=campus.school_a)
        assert classes == [school_class]
        assert cast(Any, classes[0]).pupil_count == 3

    def test_a_teacher_s_classes_are_the_classes_they_teach(self, campus):
        classes = selectors.teacher_classes(user=campus.teacher_x, school=campus.school_a)
        assert classes == [campus.class_x]

    def test_a_teacher_s_classes_leave_out_archived_ones(self, campus, frozen_now):
        SchoolClass.objects.filter(pk=campus.class_x.pk).update(archived_at=frozen_now)
        assert selectors.teacher_classes(user=campus.teacher_x, school=campus.school_a) == []

    def test_a_teacher_s_next_lessons_are_the_upcoming_lessons_they_teach(self, campus, frozen_now):
        later = LessonFactory.create(
            school_class=campus.class_x, starts_at=frozen_now + timedelta(days=1)
        )
        LessonFactory.create(school_class=campus.class_x, state=LessonState.CANCELLED)
        LessonFactory.create(school_class=campus.class_y, starts_at=frozen_now + timedelta(hours=3))
        assert selectors.teacher_next_lessons(
            user=campus.teacher_x, school=campus.school_a, now=frozen_now
        ) == [campus.lesson_x, later]

    def test_the_school_overview_counts_people_classes_and_lessons(self, campus, frozen_now):
        LessonFactory.create(school_class=campus.class_y, starts_at=frozen_now + timedelta(days=1))
        LessonFactory.create(
            school_class=campus.class_y,
            starts_at=frozen_now + timedelta(days=1),
            state=LessonState.CANCELLED,
        )
        LessonFactory.create(school_class=campus.class_y, starts_at=frozen_now + timedelta(days=8))
        campus.lesson_x.state = LessonState.LIVE
        campus.lesson_x.save()
        overview = selectors.school_overview(school=campus.school_a, now=frozen_now)
        # pupil_x and pupil_y; the deactivated pupil and the leaver do not count.
        assert overview.pupils == 2
        assert overview.teachers == 2
        assert overview.guardians == 1
        assert overview.admins == 1
        assert overview.classes == 2
        assert overview.lessons_this_week == 3
        assert overview.live_now == (campus.lesson_x,)

    def test_a_guardian_sees_each_ward_s_lessons_today(self, campus, frozen_now):
        tomorrow = LessonFactory.create(
            school_class=campus.class_x, starts_at=frozen_now + timedelta(days=1)
        )
        wards = selectors.guardian_wards_today(
            user=campus.guardian_a, school=campus.school_a, now=frozen_now
        )
        assert [(w.pupil, w.lessons) for w in wards] == [(campus.pupil_x, (campus.lesson_x,))]
        assert tomorrow not in wards[0].lessons

    def test_a_guardian_of_two_pupils_of_one_class_sees_the_lesson_under_each(
        self, campus, frozen_now
    ):
        sibling = pupil_of(campus.class_x, given_name="Zelie")
        guardian = guardian_of(campus.pupil_x, sibling, school=campus.school_a)
        wards = selectors.guardian_wards_today(
            user=guardian, school=campus.school_a, now=frozen_now
        )
        assert [(w.pupil, w.lessons) for w in wards] == [
            (campus.pupil_x, (campus.lesson_x,)),
            (sibling, (campus.lesson_x,)),
        ]
