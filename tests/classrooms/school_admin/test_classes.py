"""Classes, their rosters, terms and courses: the admin's pages and the rules the services hold.

Only active members of the school with the matching role are enrolled; ids from another school
are refused and never enrolled; archived classes keep their roster frozen; duplicate names and
codes and a term ending before it starts are form errors, never a 500.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pytest_django.asserts import assertContains, assertNotContains

from accounts.models import Membership, Role, User
from classrooms.models import AuditAction, AuditEvent, Course, Enrollment, SchoolClass, Term
from classrooms.school_admin import class_services
from tests.factories import SchoolClassFactory, member, pupil_of

pytestmark = pytest.mark.django_db


def school_url(campus, suffix: str) -> str:
    return f"/school/{campus.school_a.pk}/{suffix}"


def roster(school_class: SchoolClass, role: str = "pupil") -> set[int]:
    return set(
        Enrollment.objects.filter(school_class=school_class, role=role).values_list(
            "user_id", flat=True
        )
    )


@pytest.fixture
def pupils(campus) -> list[User]:
    """Three pupils of school A on no roster."""
    return [
        member(campus.school_a, Role.PUPIL, given_name=f"New{n}", family_name="Pupil")
        for n in range(3)
    ]


class TestClassPages:
    def test_the_list_shows_classes_with_teachers_and_pupil_counts(self, campus, log_in):
        response = log_in(campus.admin_a).get(school_url(campus, "classes/"))
        assertContains(response, "5X Maths")
        assertContains(response, "Theo Xenakis")
        assertNotContains(response, "5Z Maths")

    def test_an_admin_creates_a_class_and_lands_on_its_page(self, campus, log_in):
        term = campus.class_x.term
        response = log_in(campus.admin_a).post(
            school_url(campus, "classes/new/"),
            {"name": "6A Art", "term": term.pk, "course": campus.class_x.course_id},
            follow=True,
        )
        school_class = SchoolClass.objects.get(name="6A Art")
        assert school_class.school == campus.school_a
        assertContains(response, "The class 6A Art was created.")
        assert AuditEvent.objects.get(action=AuditAction.CLASS_CREATED).target_id == str(
            school_class.pk
        )

    def test_a_term_of_another_school_is_an_invalid_choice(self, campus, log_in):
        response = log_in(campus.admin_a).post(
            school_url(campus, "classes/new/"),
            {"name": "6A Art", "term": campus.class_z.term_id, "course": campus.class_x.course_id},
        )
        assert response.status_code == 200
        assert not SchoolClass.objects.filter(name="6A Art").exists()
        with pytest.raises(ValidationError):
            class_services.class_create(
                school=campus.school_a,
                actor=campus.admin_a,
                name="6A Art",
                term_id=campus.class_z.term_id,
                course_id=campus.class_x.course_id,
            )

    def test_a_duplicate_class_name_in_a_term_is_a_form_error(self, campus, log_in):
        response = log_in(campus.admin_a).post(
            school_url(campus, "classes/new/"),
            {
                "name": "5X Maths",
                "term": campus.class_x.term_id,
                "course": campus.class_x.course_id,
            },
        )
        assertContains(response, "This term already has a class with this name.")

    def test_editing_a_class_records_what_changed(self, campus, log_in):
        log_in(campus.admin_a).post(
            school_url(campus, f"classes/{campus.class_x.pk}/edit/"),
            {
                "name": "5X Algebra",
                "term": campus.class_x.term_id,
                "course": campus.class_x.course_id,
            },
        )
        campus.class_x.refresh_from_db()
        assert campus.class_x.name == "5X Algebra"
        event = AuditEvent.objects.get(action=AuditAction.CLASS_UPDATED)
        assert event.details == {"changed": {"name": ["5X Maths", "5X Algebra"]}}

    def test_archive_and_restore(self, campus, log_in):
        client = log_in(campus.admin_a)
        # Follow the redirect: it shows (and uses up) the "5X Maths was archived." message.
        client.post(school_url(campus, f"classes/{campus.class_x.pk}/archive/"), follow=True)
        campus.class_x.refresh_from_db()
        assert campus.class_x.archived_at is not None
        assertNotContains(client.get(school_url(campus, "classes/")), "5X Maths")
        assertContains(
            client.get(school_url(campus, "classes/"), {"status": "archived"}), "5X Maths"
        )
        client.post(school_url(campus, f"classes/{campus.class_x.pk}/restore/"))
        campus.class_x.refresh_from_db()
        assert campus.class_x.archived_at is None
        assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
            AuditAction.CLASS_ARCHIVED,
            AuditAction.CLASS_RESTORED,
        ]

    def test_the_class_list_costs_the_same_queries_however_many_classes(self, campus, log_in):
        client = log_in(campus.admin_a)

        def count() -> int:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(school_url(campus, "classes/")).status_code == 200
            return len(queries.captured_queries)

        small = count()
        for n in range(60):
            school_class = SchoolClassFactory.create(school=campus.school_a, name=f"Grown {n:02}")
            pupil_of(school_class)
            Enrollment.objects.create(
                school=campus.school_a,
                school_class=school_class,
                user=campus.teacher_x,
                role="teacher",
            )
        assert count() == small == 7


class TestEnrolment:
    def test_three_pupils_are_enrolled_at_once_and_each_is_audited(self, campus, log_in, pupils):
        response = log_in(campus.admin_a).post(
            school_url(campus, f"classes/{campus.class_x.pk}/pupils/add/"),
            {"users": [p.pk for p in pupils]},
            follow=True,
        )
        assertContains(response, "3 pupils were enrolled.")
        assert {p.pk for p in pupils} <= roster(campus.class_x)
        events = AuditEvent.objects.filter(action=AuditAction.ENROLLMENT_ADDED)
        assert sorted(e.details["user_id"] for e in events) == sorted(p.pk for p in pupils)

    def test_a_pupil_of_another_school_is_never_enrolled(self, campus, log_in, pupils):
        log_in(campus.admin_a).post(
            school_url(campus, f"classes/{campus.class_x.pk}/pupils/add/"),
            {"users": [pupils[0].pk, campus.pupil_z.pk]},
        )
        assert campus.pupil_z.pk not in roster(campus.class_x)
        assert pupils[0].pk not in roster(campus.class_x)
        with pytest.raises(ValidationError, match="Only active pupils of this school"):
            class_services.enrollments_add(
                school=campus.school_a,
                actor=campus.admin_a,
                school_class=campus.class_x,
                role="pupil",
                user_ids=[pupils[0].pk, campus.pupil_z.pk],
            )
        assert not AuditEvent.objects.exists()

    @pytest.mark.parametrize(
        ("person", "role"),
        [("teacher_y", "pupil"), ("pupil_y", "teacher"), ("guardian_a", "pupil")],
    )
    def test_only_the_matching_role_is_enrolled(self, campus, person, role):
        with pytest.raises(ValidationError):
            class_services.enrollments_add(
                school=campus.school_a,
                actor=campus.admin_a,
                school_class=campus.class_x,
                role=role,
                user_ids=[campus.person(person).pk],
            )
        assert campus.person(person).pk not in roster(campus.class_x, role)

    def test_a_deactivated_pupil_is_not_enrolled(self, campus, pupils):
        Membership.objects.filter(user=pupils[0]).update(deactivated_at=campus.lesson_x.starts_at)
        with pytest.raises(ValidationError):
            class_services.enrollments_add(
                school=campus.school_a,
                actor=campus.admin_a,
                school_class=campus.class_x,
                role="pupil",
                user_ids=[pupils[0].pk],
            )

    def test_a_class_of_another_school_is_refused(self, campus, pupils):
        with pytest.raises(ValidationError):
            class_services.enrollments_add(
                school=campus.school_a,
                actor=campus.admin_a,
                school_class=campus.class_z,
                role="pupil",
                user_ids=[pupils[0].pk],
            )
        assert pupils[0].pk not in roster(campus.class_z)

    def test_enrolling_twice_adds_nobody_twice(self, campus, pupils):
        ids = [p.pk for p in pupils]
        kwargs = {
            "school": campus.school_a,
            "actor": campus.admin_a,
            "school_class": campus.class_x,
            "role": "pupil",
        }
        assert class_services.enrollments_add(user_ids=ids, **kwargs) == 3
        assert class_services.enrollments_add(user_ids=ids, **kwargs) == 0

    def test_a_teacher_of_the_class_cannot_also_be_its_pupil(self, campus):
        Membership.objects.create(user=campus.teacher_x, school=campus.school_a, role=Role.PUPIL)
        with pytest.raises(ValidationError, match="another role"):
            class_services.enrollments_add(
                school=campus.school_a,
                actor=campus.admin_a,
                school_class=campus.class_x,
                role="pupil",
                user_ids=[campus.teacher_x.pk],
            )

    def test_remove_selected_takes_pupils_off_the_roster(self, campus, log_in, pupils):
        class_services.enrollments_add(
            school=campus.school_a,
            actor=campus.admin_a,
            school_class=campus.class_x,
            role="pupil",
            user_ids=[p.pk for p in pupils],
        )
        response = log_in(campus.admin_a).post(
            school_url(campus, f"classes/{campus.class_x.pk}/remove/"),
            {"users": [pupils[0].pk, pupils[1].pk]},
            follow=True,
        )
        assertContains(response, "2 people were taken off the roster.")
        assert roster(campus.class_x) & {p.pk for p in pupils} == {pupils[2].pk}
        assert AuditEvent.objects.filter(action=AuditAction.ENROLLMENT_REMOVED).count() == 2

    def test_assign_and_unassign_a_teacher(self, campus, log_in):
        client = log_in(campus.admin_a)
        client.post(
            school_url(campus, f"classes/{campus.class_x.pk}/teachers/add/"),
            {"users": [campus.teacher_y.pk]},
        )
        assert campus.teacher_y.pk in roster(campus.class_x, "teacher")
        client.post(
            school_url(campus, f"classes/{campus.class_x.pk}/remove/"),
            {"users": [campus.teacher_y.pk]},
        )
        assert campus.teacher_y.pk not in roster(campus.class_x, "teacher")

    def test_an_archived_class_s_roster_is_frozen(self, campus, pupils):
        class_services.class_archive(
            school=campus.school_a, actor=campus.admin_a, school_class=campus.class_x
        )
        campus.class_x.refresh_from_db()
        with pytest.raises(ValidationError, match="archived"):
            class_services.enrollments_add(
                school=campus.school_a,
                actor=campus.admin_a,
                school_class=campus.class_x,
                role="pupil",
                user_ids=[pupils[0].pk],
            )

    def test_the_class_page_offers_pupils_not_yet_in_the_class_with_a_search(
        self, campus, log_in, pupils
    ):
        client = log_in(campus.admin_a)
        response = client.get(school_url(campus, f"classes/{campus.class_x.pk}/"))
        assertContains(response, "New0 Pupil")
        assertContains(response, "Paul Yates")
        assertNotContains(response, "Zoe Zed")
        searched = client.get(school_url(campus, f"classes/{campus.class_x.pk}/"), {"q": "New1"})
        assertContains(searched, "New1 Pupil")
        assertNotContains(searched, "New0 Pupil")


class TestTermsAndCourses:
    def test_an_admin_creates_and_edits_a_term(self, campus, log_in):
        client = log_in(campus.admin_a)
        client.post(
            school_url(campus, "terms/new/"),
            {"name": "Spring", "starts_on": "2025-01-06", "ends_on": "2025-04-04"},
        )
        term = Term.objects.get(school=campus.school_a, name="Spring")
        client.post(
            school_url(campus, f"terms/{term.pk}/edit/"),
            {"name": "Spring", "starts_on": "2025-01-06", "ends_on": "2025-04-11"},
        )
        term.refresh_from_db()
        assert term.ends_on == date(2025, 4, 11)
        assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
            AuditAction.TERM_CREATED,
            AuditAction.TERM_UPDATED,
        ]

    def test_a_term_ending_before_it_starts_is_a_form_error(self, campus, log_in):
        response = log_in(campus.admin_a).post(
            school_url(campus, "terms/new/"),
            {"name": "Backwards", "starts_on": "2025-04-01", "ends_on": "2025-01-01"},
        )
        assertContains(response, "The last day cannot come before the first day.")
        with pytest.raises(ValidationError):
            class_services.term_create(
                school=campus.school_a,
                actor=campus.admin_a,
                name="Backwards",
                starts_on=date(2025, 4, 1),
                ends_on=date(2025, 1, 1),
            )

    def test_a_duplicate_term_name_is_a_form_error(self, campus, log_in):
        response = log_in(campus.admin_a).post(
            school_url(campus, "terms/new/"),
            {"name": campus.class_x.term.name, "starts_on": "2025-01-01", "ends_on": "2025-02-01"},
        )
        assertContains(response, "The school already has a term with this name.")

    def test_a_duplicate_course_code_is_a_form_error_not_a_500(self, campus, log_in):
        code = campus.class_x.course.code
        response = log_in(campus.admin_a).post(
            school_url(campus, "courses/new/"), {"title": "Other", "code": code.lower()}
        )
        assertContains(response, "The school already has a course with this code.")
        other = Course.objects.create(school=campus.school_a, title="Other", code="OTHER")
        response = log_in(campus.admin_a).post(
            school_url(campus, f"courses/{other.pk}/edit/"), {"title": "Other", "code": code}
        )
        assertContains(response, "The school already has a course with this code.")

    def test_the_same_course_code_in_another_school_is_fine(self, campus, log_in):
        log_in(campus.admin_a).post(
            school_url(campus, "courses/new/"),
            {"title": "Maths", "code": campus.class_z.course.code},
        )
        assert Course.objects.filter(
            school=campus.school_a, code=campus.class_z.course.code
        ).exists()

    def test_the_page_lists_only_the_school_s_terms_and_courses(self, campus, log_in):
        response = log_in(campus.admin_a).get(school_url(campus, "terms/"))
        assertContains(response, campus.class_x.course.code)
        assertNotContains(response, campus.class_z.course.code)
