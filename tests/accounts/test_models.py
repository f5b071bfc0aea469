"""Users log in by email, whatever its case; guardians follow other people."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from accounts.models import User
from tests.factories import GuardianshipFactory, SchoolFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_an_email_is_unique_whatever_its_case():
    """Two accounts cannot share an address that differs only in case."""
    User.objects.create(email="Marie.Curie@school.test", given_name="Marie")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="marie.curie@SCHOOL.test", given_name="Marie")


def test_create_user_stores_the_email_in_lower_case():
    user = User.objects.create_user("Marie.Curie@School.TEST", "pw", given_name="Marie")
    assert user.email == "marie.curie@school.test"
    assert user.check_password("pw")


def test_create_user_needs_an_email():
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user("", "pw", given_name="Nobody")


def test_a_superuser_is_an_operator():
    user = User.objects.create_superuser("ops@homeroom.test", "pw", given_name="Ops")
    assert user.is_staff
    assert user.is_superuser


def test_a_user_is_found_by_email_whatever_its_case():
    user = UserFactory.create(email="paul@school.test")
    assert User.objects.get_by_natural_key("PAUL@School.Test") == user


def test_the_display_name_is_the_roster_name():
    assert UserFactory.build(given_name="Léa", family_name="Martin").display_name == "Léa Martin"


def test_the_display_name_falls_back_to_the_email():
    user = UserFactory.build(given_name="", family_name="", email="x@school.test")
    assert user.display_name == "x@school.test"
    assert user.get_short_name() == "x@school.test"


def test_a_guardian_cannot_guard_themself():
    user = UserFactory.create()
    with pytest.raises(IntegrityError), transaction.atomic():
        GuardianshipFactory.create(school=SchoolFactory.create(), guardian=user, pupil=user)


def test_a_guardian_follows_a_pupil_once_per_school():
    link = GuardianshipFactory.create()
    with pytest.raises(IntegrityError), transaction.atomic():
        GuardianshipFactory.create(school=link.school, guardian=link.guardian, pupil=link.pupil)
