"""Invitations: a random token stored only as its sha256, mailed on commit, valid for
HOMEROOM_INVITATION_DAYS days and once; a new one withdraws the old; the link sets a password
and logs the person in; a link that does not work says why without saying whose it was.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from accounts.models import Invitation, Membership, Role, User
from classrooms.models import AuditAction, AuditEvent
from classrooms.school_admin import invitations, services
from tests.factories import member

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a long and unusual passphrase 42"


@pytest.fixture
def newcomer(campus) -> User:
    """A pupil of school A created by an import: no password yet."""
    return member(
        campus.school_a, Role.PUPIL, given_name="Nora", family_name="Newcomer", password=None
    )


def link_in(message: object) -> str:
    match = re.search(r"http://testserver(/invitations/[^/\s]+/)", str(message))
    assert match, message
    return match.group(1)


def invite(campus, log_in, user: User, django_capture_on_commit_callbacks) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        response = log_in(campus.admin_a).post(
            f"/school/{campus.school_a.pk}/people/{user.pk}/invite/"
        )
    assert response.status_code == 302
    return link_in(mail.outbox[-1].body)


class TestSending:
    def test_an_invitation_is_mailed_on_commit_with_a_link_and_audited(
        self, campus, log_in, newcomer, django_capture_on_commit_callbacks
    ):
        path = invite(campus, log_in, newcomer, django_capture_on_commit_callbacks)
        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == [newcomer.email]
        assert "Ecole A" in mail.outbox[0].subject
        token = path.split("/")[2]
        invitation = Invitation.objects.get(user=newcomer)
        assert invitation.token_hash == invitations.token_hash(token)
        assert token not in invitation.token_hash
        assert invitation.created_by == campus.admin_a
        assert AuditEvent.objects.get(action=AuditAction.INVITATION_SENT).target_id == str(
            newcomer.pk
        )

    def test_the_token_is_never_stored_in_clear(
        self, campus, newcomer, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            invitations.invitation_send(
                school=campus.school_a,
                actor=campus.admin_a,
                user=newcomer,
                base_url="http://testserver/",
            )
        token = link_in(mail.outbox[0].body).split("/")[2]
        stored = list(Invitation.objects.values_list("token_hash", flat=True))
        assert token not in stored
        assert all(token not in str(event.details) for event in AuditEvent.objects.all())

    def test_no_mail_leaves_when_the_transaction_rolls_back(
        self, campus, newcomer, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            invitations.invitation_send(
                school=campus.school_a, actor=campus.admin_a, user=newcomer, base_url="http://t/"
            )
        assert len(callbacks) == 1
        assert mail.outbox == []

    def test_resending_revokes_the_older_link(
        self, campus, log_in, newcomer, django_capture_on_commit_callbacks
    ):
        first = invite(campus, log_in, newcomer, django_capture_on_commit_callbacks)
        second = invite(campus, log_in, newcomer, django_capture_on_commit_callbacks)
        assert first != second
        response = log_in(campus.outsider).get(first)
        assert response.status_code == 410
        assertContains(response, "replaced by a newer one", status_code=410)
        assert Invitation.objects.filter(user=newcomer, revoked_at__isnull=True).count() == 1

    def test_someone_with_a_password_is_not_invited(self, campus):
        with pytest.raises(ValidationError, match="already has a password"):
            invitations.invitation_send(
                school=campus.school_a,
                actor=campus.admin_a,
                user=campus.pupil_x,
                base_url="http://t/",
            )

    def test_a_deactivated_person_is_not_invited(self, campus, newcomer):
        services.person_deactivate(school=campus.school_a, actor=campus.admin_a, user=newcomer)
        with pytest.raises(ValidationError):
            invitations.invitation_send(
                school=campus.school_a, actor=campus.admin_a, user=newcomer, base_url="http://t/"
            )

    def test_invite_everyone_without_a_password_skips_those_with_a_working_link(
        self, campus, log_in, newcomer, django_capture_on_commit_callbacks
    ):
        other = member(campus.school_a, Role.TEACHER, password=None)
        foreign = member(campus.school_b, Role.PUPIL, password=None)
        url = f"/school/{campus.school_a.pk}/people/invite-missing/"
        with django_capture_on_commit_callbacks(execute=True):
            response = log_in(campus.admin_a).post(url, follow=True)
        assertContains(response, "2 invitations were sent.")
        assert sorted(m.to[0] for m in mail.outbox) == sorted([newcomer.email, other.email])
        assert foreign.email not in [m.to[0] for m in mail.outbox]
        with django_capture_on_commit_callbacks(execute=True):
            response = log_in(campus.admin_a).post(url, follow=True)
        assertContains(response, "Everyone already has a password or a link that still works.")
        assert len(mail.outbox) == 2


class TestLink:
    def test_the_link_sets_the_password_logs_in_and_is_audited(
        self, campus, log_in, client, newcomer, django_capture_on_commit_callbacks
    ):
        path = invite(campus, log_in, newcomer, django_capture_on_commit_callbacks)
        client.logout()
        page = client.get(path)
        assertContains(page, "Welcome, Nora")
        response = client.post(path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
        assertRedirects(response, "/", fetch_redirect_response=False)
        newcomer.refresh_from_db()
        assert newcomer.check_password(NEW_PASSWORD)
        assert client.get("/").context["user"] == newcomer
        invitation = Invitation.objects.get(user=newcomer)
        assert invitation.accepted_at is not None
        event = AuditEvent.objects.get(action=AuditAction.INVITATION_ACCEPTED)
        assert event.actor == newcomer

    def test_a_used_link_is_refused_the_second_time(
        self, campus, log_in, client, newcomer, django_capture_on_commit_callbacks
    ):
        path = invite(campus, log_in, newcomer, django_capture_on_commit_callbacks)
        client.logout()
        client.post(path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
        client.logout()
        again = client.post(
            path,
            {
                "new_password1": "another fine passphrase 7",
                "new_password2": "another fine passphrase 7",
            },
        )
        assert again.status_code == 410
        assertContains(again, "already used", status_code=410)
        newcomer.refresh_from_db()
        assert newcomer.check_password(NEW_PASSWORD)
        with pytest.raises(invitations.InvitationUnusableError):
            invitations.invitation_accept(
                token=path.split("/")[2], password="another fine passphrase 7"
            )

    def test_a_link_expires_after_the_configured_days(
        self,
        campus,
        log_in,
        client,
        newcomer,
        settings,
        time_machine,
        frozen_now,
        django_capture_on_commit_callbacks,
    ):
        settings.HOMEROOM_INVITATION_DAYS = 3
        path = invite(campus, log_in, newcomer, django_capture_on_commit_callbacks)
        client.logout()
        time_machine.move_to(frozen_now + timedelta(days=3, seconds=-1), tick=False)
        assert client.get(path).status_code == 200
        time_machine.move_to(frozen_now + timedelta(days=3), tick=False)
        response = client.post(path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
        assert response.status_code == 410
        assertContains(response, "This invitation has expired.", status_code=410)
        assertContains(response, "Ask your school", status_code=410)
        newcomer.refresh_from_db()
        assert not newcomer.has_usable_password()

    def test_a_weak_password_is_a_form_error(
        self, campus, log_in, client, newcomer, django_capture_on_commit_callbacks
    ):
        path = invite(campus, log_in, newcomer, django_capture_on_commit_callbacks)
        client.logout()
        response = client.post(path, {"new_password1": "123", "new_password2": "123"})
        assert response.status_code == 200
        assertContains(response, "too short")
        assert Invitation.objects.get(user=newcomer).accepted_at is None

    @pytest.mark.parametrize(
        "token",
        ["x" * 43, "short", "%00" * 20, "a" * 300, "abc%20def" * 8],
        ids=["well formed but unknown", "too short", "NUL bytes", "too long", "spaces"],
    )
    def test_an_unknown_link_says_so_without_naming_anyone_and_never_500s(self, client, db, token):
        client.raise_request_exception = False
        response = client.get(f"/invitations/{token}/")
        assert response.status_code == 404
        assertContains(response, "not valid", status_code=404)

    def test_a_deactivated_person_s_link_stops_working_and_names_nobody(
        self, campus, log_in, client, newcomer, django_capture_on_commit_callbacks
    ):
        path = invite(campus, log_in, newcomer, django_capture_on_commit_callbacks)
        Membership.objects.filter(user=newcomer).update(deactivated_at=campus.lesson_x.starts_at)
        client.logout()
        response = client.get(path)
        assert response.status_code == 410
        assertNotContains(response, "Nora", status_code=410)
        assertNotContains(response, newcomer.email, status_code=410)
