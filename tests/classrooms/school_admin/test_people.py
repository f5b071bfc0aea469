"""People: create, edit names, email and roles, deactivate and reactivate, link guardians; the
people list's search, filters, invitation status and constant query count.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from accounts.models import Guardianship, Membership, Role, User
from classrooms import selectors as school_selectors
from classrooms.access import RosterLessonAccess
from classrooms.exceptions import NotFound
from classrooms.models import AuditAction, AuditEvent
from classrooms.school_admin import invitations, services
from media_relay.ports import Refusal
from tests.factories import member

pytestmark = pytest.mark.django_db


def people_url(campus, suffix: str = "") -> str:
    return f"/school/{campus.school_a.pk}/people/{suffix}"


def actions(school) -> list[str]:
    return list(
        AuditEvent.objects.filter(school=school).order_by("id").values_list("action", flat=True)
    )


class TestCreate:
    def test_an_admin_adds_a_person_with_roles_and_it_is_audited(self, campus, log_in):
        response = log_in(campus.admin_a).post(
            people_url(campus, "new/"),
            {
                "email": "Nina@School.test",
                "given_name": "Nina",
                "family_name": "New",
                "roles": ["pupil", "guardian"],
            },
        )
        user = User.objects.get(email="nina@school.test")
        assertRedirects(response, people_url(campus, f"{user.pk}/"), fetch_redirect_response=False)
        assert not user.has_usable_password()
        assert set(
            Membership.objects.filter(user=user, school=campus.school_a).values_list(
                "role", flat=True
            )
        ) == {"pupil", "guardian"}
        event = AuditEvent.objects.get(school=campus.school_a, action=AuditAction.PERSON_CREATED)
        assert event.actor == campus.admin_a
        assert event.details["roles"] == ["guardian", "pupil"]

    def test_an_email_already_in_the_school_is_a_form_error_not_a_500(self, campus, log_in):
        response = log_in(campus.admin_a).post(
            people_url(campus, "new/"),
            {"email": campus.pupil_x.email.upper(), "given_name": "X", "roles": ["pupil"]},
        )
        assertContains(response, "Someone in this school already has this email address.")
        assert not AuditEvent.objects.exists()

    def test_a_person_needs_a_role(self, campus, log_in):
        response = log_in(campus.admin_a).post(
            people_url(campus, "new/"), {"email": "a@school.test", "given_name": "A"}
        )
        assertContains(response, "Choose at least one role.")

    def test_an_account_of_another_school_joins_with_its_own_name(self, campus):
        user = services.person_create(
            school=campus.school_a,
            actor=campus.admin_a,
            email=campus.teacher_z.email,
            given_name="Other",
            family_name="Name",
            roles=[Role.TEACHER],
        )
        assert user.pk == campus.teacher_z.pk
        user.refresh_from_db()
        assert user.given_name == "Tom"
        assert Membership.objects.filter(
            user=user, school=campus.school_a, role=Role.TEACHER
        ).exists()


class TestEdit:
    def test_names_and_email_change_and_the_change_is_audited(self, campus, log_in):
        response = log_in(campus.admin_a).post(
            people_url(campus, f"{campus.pupil_x.pk}/edit/"),
            {
                "email": "pia@school.test",
                "given_name": "Pia",
                "family_name": "Xylo",
                "roles": ["pupil"],
            },
        )
        assert response.status_code == 302
        campus.pupil_x.refresh_from_db()
        assert (campus.pupil_x.email, campus.pupil_x.family_name) == ("pia@school.test", "Xylo")
        event = AuditEvent.objects.get(action=AuditAction.PERSON_UPDATED)
        assert event.details["changed"]["family_name"] == ["Xavier", "Xylo"]

    def test_adding_and_removing_roles_are_audited_one_event_each(self, campus):
        pupil = campus.pupil_x
        services.person_update(
            school=campus.school_a,
            actor=campus.admin_a,
            user=pupil,
            email=pupil.email,
            given_name=pupil.given_name,
            family_name=pupil.family_name,
            roles=[Role.TEACHER, Role.GUARDIAN],
        )
        roles = set(
            Membership.objects.filter(user=pupil, school=campus.school_a).values_list(
                "role", flat=True
            )
        )
        assert roles == {"teacher", "guardian"}
        events = AuditEvent.objects.filter(school=campus.school_a).order_by(
            "action", "details__role"
        )
        assert [(e.action, e.details["role"]) for e in events] == [
            ("role.added", "guardian"),
            ("role.added", "teacher"),
            ("role.removed", "pupil"),
        ]
        assert not AuditEvent.objects.filter(action=AuditAction.PERSON_UPDATED).exists()

    def test_an_email_used_by_another_account_is_a_form_error(self, campus, log_in):
        response = log_in(campus.admin_a).post(
            people_url(campus, f"{campus.pupil_x.pk}/edit/"),
            {"email": campus.pupil_z.email, "given_name": "Pia", "roles": ["pupil"]},
        )
        assertContains(response, "Someone already has this email address.")

    def test_an_account_used_by_another_school_keeps_its_email_and_name(self, campus):
        Membership.objects.create(user=campus.pupil_z, school=campus.school_a, role=Role.PUPIL)
        with pytest.raises(ValidationError, match="also used outside this school"):
            services.person_update(
                school=campus.school_a,
                actor=campus.admin_a,
                user=campus.pupil_z,
                email="takeover@evil.test",
                given_name="Zoe",
                family_name="Zed",
                roles=[Role.PUPIL],
            )
        campus.pupil_z.refresh_from_db()
        assert campus.pupil_z.email != "takeover@evil.test"

    def test_the_edit_form_locks_a_shared_account_s_email(self, campus, log_in):
        Membership.objects.create(user=campus.pupil_z, school=campus.school_a, role=Role.PUPIL)
        response = log_in(campus.admin_a).get(people_url(campus, f"{campus.pupil_z.pk}/edit/"))
        assertContains(response, "also used outside this school")
        assertContains(response, "disabled")

    def test_an_admin_cannot_take_away_their_own_admin_role(self, campus):
        admin = campus.admin_a
        with pytest.raises(ValidationError, match="your own admin role"):
            services.person_update(
                school=campus.school_a,
                actor=admin,
                user=admin,
                email=admin.email,
                given_name=admin.given_name,
                family_name=admin.family_name,
                roles=[Role.TEACHER],
            )
        assert Membership.objects.filter(user=admin, role=Role.ADMIN).exists()

    def test_a_role_added_to_a_deactivated_person_is_deactivated_too(self, campus):
        services.person_deactivate(
            school=campus.school_a, actor=campus.admin_a, user=campus.pupil_x
        )
        pupil = campus.pupil_x
        services.person_update(
            school=campus.school_a,
            actor=campus.admin_a,
            user=pupil,
            email=pupil.email,
            given_name=pupil.given_name,
            family_name=pupil.family_name,
            roles=[Role.PUPIL, Role.TEACHER],
        )
        assert not Membership.objects.active().filter(user=pupil, school=campus.school_a).exists()


class TestDeactivation:
    def test_a_deactivated_pupil_loses_their_classes_lessons_and_the_lesson_room(
        self, campus, log_in
    ):
        pupil = campus.pupil_x
        assert (
            RosterLessonAccess().admit(user_id=pupil.pk, lesson_key=campus.lesson_x.key)
            != Refusal.NOT_ON_ROSTER
        )
        log_in(campus.admin_a).post(people_url(campus, f"{pupil.pk}/deactivate/"))
        assert not school_selectors.classes_for_user(pupil).exists()
        assert not school_selectors.lessons_for_user(pupil).exists()
        assert school_selectors.roles_by_school(pupil) == {}
        assert (
            RosterLessonAccess().admit(user_id=pupil.pk, lesson_key=campus.lesson_x.key)
            == Refusal.NOT_ON_ROSTER
        )
        client = log_in(pupil)
        assert client.get(f"/classes/{campus.class_x.pk}/").status_code == 404
        assertContains(client.get("/"), "not part of a school yet")

    def test_a_deactivated_admin_runs_the_school_no_more(self, campus):
        other = member(campus.school_a, Role.ADMIN)
        services.person_deactivate(school=campus.school_a, actor=other, user=campus.admin_a)
        with pytest.raises(NotFound):
            school_selectors.access_school_for_admin(
                user=campus.admin_a, school_id=campus.school_a.pk
            )

    def test_deactivation_keeps_the_person_their_enrollments_and_is_audited(self, campus):
        services.person_deactivate(
            school=campus.school_a, actor=campus.admin_a, user=campus.pupil_x
        )
        assert User.objects.filter(pk=campus.pupil_x.pk).exists()
        assert campus.pupil_x.enrollments.exists()
        assert (
            Membership.objects.get(user=campus.pupil_x, school=campus.school_a).deactivated_at
            is not None
        )
        assert actions(campus.school_a) == [AuditAction.PERSON_DEACTIVATED]

    def test_deactivation_in_one_school_leaves_the_other_alone(self, campus):
        Membership.objects.create(user=campus.teacher_z, school=campus.school_a, role=Role.TEACHER)
        services.person_deactivate(
            school=campus.school_a, actor=campus.admin_a, user=campus.teacher_z
        )
        assert (
            school_selectors.classes_for_user(campus.teacher_z)
            .filter(pk=campus.class_z.pk)
            .exists()
        )

    def test_reactivation_gives_everything_back(self, campus, log_in):
        client = log_in(campus.admin_a)
        client.post(people_url(campus, f"{campus.pupil_x.pk}/deactivate/"))
        client.post(people_url(campus, f"{campus.pupil_x.pk}/reactivate/"))
        assert (
            school_selectors.classes_for_user(campus.pupil_x).filter(pk=campus.class_x.pk).exists()
        )
        assert actions(campus.school_a) == [
            AuditAction.PERSON_DEACTIVATED,
            AuditAction.PERSON_REACTIVATED,
        ]

    def test_an_admin_cannot_deactivate_themselves(self, campus, log_in):
        response = log_in(campus.admin_a).post(
            people_url(campus, f"{campus.admin_a.pk}/deactivate/"), follow=True
        )
        assertContains(response, "You cannot deactivate yourself.")
        assert Membership.objects.active().filter(user=campus.admin_a).exists()

    def test_deactivating_twice_says_so_and_records_once(self, campus, log_in):
        client = log_in(campus.admin_a)
        client.post(people_url(campus, f"{campus.pupil_x.pk}/deactivate/"))
        response = client.post(people_url(campus, f"{campus.pupil_x.pk}/deactivate/"), follow=True)
        assertContains(response, "already deactivated")
        assert actions(campus.school_a) == [AuditAction.PERSON_DEACTIVATED]


class TestGuardians:
    def test_an_admin_links_a_guardian_to_a_pupil(self, campus, log_in):
        response = log_in(campus.admin_a).post(
            people_url(campus, f"{campus.guardian_a.pk}/wards/"), {"pupil": campus.pupil_y.pk}
        )
        assert response.status_code == 302
        assert Guardianship.objects.filter(
            guardian=campus.guardian_a, pupil=campus.pupil_y, school=campus.school_a
        ).exists()
        event = AuditEvent.objects.get(action=AuditAction.GUARDIAN_LINKED)
        assert event.details["pupil_id"] == campus.pupil_y.pk

    def test_a_pupil_of_another_school_is_never_linked(self, campus, log_in):
        log_in(campus.admin_a).post(
            people_url(campus, f"{campus.guardian_a.pk}/wards/"), {"pupil": campus.pupil_z.pk}
        )
        with pytest.raises(ValidationError):
            services.guardian_link(
                school=campus.school_a,
                actor=campus.admin_a,
                guardian_id=campus.guardian_a.pk,
                pupil_id=campus.pupil_z.pk,
            )
        assert not Guardianship.objects.filter(pupil=campus.pupil_z).exists()
        assert not AuditEvent.objects.exists()

    @pytest.mark.parametrize("guardian", ["teacher_x", "pupil_y"])
    def test_only_a_guardian_of_the_school_follows_a_pupil(self, campus, guardian):
        with pytest.raises(ValidationError, match="Only an active guardian"):
            services.guardian_link(
                school=campus.school_a,
                actor=campus.admin_a,
                guardian_id=campus.person(guardian).pk,
                pupil_id=campus.pupil_x.pk,
            )

    def test_linking_twice_is_refused(self, campus):
        with pytest.raises(ValidationError, match="already follows"):
            services.guardian_link(
                school=campus.school_a,
                actor=campus.admin_a,
                guardian_id=campus.guardian_a.pk,
                pupil_id=campus.pupil_x.pk,
            )

    def test_unlinking_removes_the_link_and_is_audited(self, campus, log_in):
        log_in(campus.admin_a).post(
            people_url(campus, f"{campus.guardian_a.pk}/wards/{campus.pupil_x.pk}/remove/")
        )
        assert not Guardianship.objects.filter(guardian=campus.guardian_a).exists()
        assert actions(campus.school_a) == [AuditAction.GUARDIAN_UNLINKED]

    def test_the_guardian_s_page_offers_pupils_to_link(self, campus, log_in):
        response = log_in(campus.admin_a).get(
            people_url(campus, f"{campus.guardian_a.pk}/") + "?q=Paul"
        )
        assertContains(response, "Paul Yates")
        assertContains(response, "Pia Xavier")  # already followed
        assertNotContains(response, "Zoe Zed")


class TestPeopleList:
    def test_the_list_shows_the_school_s_people_with_roles_and_not_another_school_s(
        self, campus, log_in
    ):
        response = log_in(campus.admin_a).get(people_url(campus))
        for name in ("Pia Xavier", "Theo Xenakis", "Gina Guard", "Ada Admin"):
            assertContains(response, name)
        for name in ("Zoe Zed", "Tom Zola", "Bob Admin", "Otto Outsider", "Leo Leaver"):
            assertNotContains(response, name)

    @pytest.mark.parametrize(
        ("query", "found", "missing"),
        [
            ({"q": "pia"}, "Pia Xavier", "Paul Yates"),
            ({"q": "Paul Yat"}, "Paul Yates", "Pia Xavier"),
            ({"q": "@school.test", "role": "teacher"}, "Theo Xenakis", "Pia Xavier"),
            ({"role": "guardian"}, "Gina Guard", "Pia Xavier"),
            ({"status": "deactivated"}, "Ines Gone", "Pia Xavier"),
            ({"status": "active"}, "Pia Xavier", "Ines Gone"),
        ],
    )
    def test_search_and_filters(self, campus, log_in, query, found, missing):
        response = log_in(campus.admin_a).get(people_url(campus), query)
        assertContains(response, found)
        assertNotContains(response, missing)

    def test_a_bad_filter_is_ignored_not_a_500(self, campus, log_in):
        response = log_in(campus.admin_a).get(people_url(campus), {"role": "wizard", "page": "x"})
        assert response.status_code == 200

    def test_each_person_s_invitation_status_shows(self, campus, log_in, frozen_now):
        fresh = member(campus.school_a, Role.PUPIL, given_name="Fresh", password=None)
        invited = member(campus.school_a, Role.PUPIL, given_name="Invited", password=None)
        invitations.invitation_send(
            school=campus.school_a, actor=campus.admin_a, user=invited, base_url="http://t/"
        )
        response = log_in(campus.admin_a).get(people_url(campus))
        page: str = response.content.decode()

        def row(name: str) -> str:
            return page.split(name, 1)[1].split("</tr>", 1)[0]

        assert "Not invited" in row(fresh.display_name)
        assert "Invited" in row(invited.display_name)
        assert "Has a password" in row("Pia Xavier")

    def test_a_page_costs_the_same_queries_however_many_people(
        self, campus, log_in, django_assert_num_queries
    ):
        client = log_in(campus.admin_a)
        with CaptureQueriesContext(connection) as small:
            assert client.get(people_url(campus)).status_code == 200
        users = User.objects.bulk_create(
            User(email=f"bulk{n}@school.test", given_name=f"Bulk{n}", family_name="Person")
            for n in range(120)
        )
        Membership.objects.bulk_create(
            Membership(user=user, school=campus.school_a, role=role)
            for user in users
            for role in (Role.PUPIL, Role.GUARDIAN)
        )
        # Session, user, nav, the school, the count, the page, the roles.
        with django_assert_num_queries(7):
            response = client.get(people_url(campus), {"page": 2, "q": "bulk"})
        assert len(small.captured_queries) == 7
        assertContains(response, "Page 2 of 3")
        assert response.content.decode().count("<tr") == 51
