"""Logging in with an email address and logging out."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from pytest_django.asserts import assertContains, assertRedirects

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
LOGOUT = "/accounts/logout/"


def test_the_login_page_asks_for_an_email_and_a_password(client):
    response = client.get(LOGIN)
    assertContains(response, "Log in to Homeroom")
    assertContains(response, 'type="email"')
    assertContains(response, 'name="username"')
    assertContains(response, 'type="password"')
    assertContains(response, "csrfmiddlewaretoken")


def test_a_user_logs_in_with_email_and_password_and_lands_home(client):
    user = UserFactory.create(email="lea@school.test")
    response = client.post(LOGIN, {"username": "lea@school.test", "password": PASSWORD})
    assertRedirects(response, "/", fetch_redirect_response=False)
    assert client.session[SESSION_KEY] == str(user.pk)


def test_the_email_is_matched_whatever_its_case(client):
    user = UserFactory.create(email="lea.martin@school.test")
    response = client.post(LOGIN, {"username": "Lea.Martin@SCHOOL.test", "password": PASSWORD})
    assertRedirects(response, "/", fetch_redirect_response=False)
    assert client.session[SESSION_KEY] == str(user.pk)


def test_a_wrong_password_shows_an_error_and_logs_nobody_in(client):
    UserFactory.create(email="lea@school.test")
    response = client.post(LOGIN, {"username": "lea@school.test", "password": "wrong"})
    assertContains(response, "That email and password do not match an account", status_code=200)
    assertContains(response, 'role="alert"')
    assert SESSION_KEY not in client.session


def test_an_unknown_email_shows_the_same_error(client):
    response = client.post(LOGIN, {"username": "nobody@school.test", "password": PASSWORD})
    assertContains(response, "That email and password do not match an account")
    assert SESSION_KEY not in client.session


def test_a_deactivated_user_cannot_log_in(client):
    UserFactory.create(email="gone@school.test", is_active=False)
    response = client.post(LOGIN, {"username": "gone@school.test", "password": PASSWORD})
    assert response.status_code == 200
    assert SESSION_KEY not in client.session


def test_login_returns_to_the_page_asked_for(client):
    UserFactory.create(email="lea@school.test")
    response = client.post(
        LOGIN, {"username": "lea@school.test", "password": PASSWORD, "next": "/classes/1/"}
    )
    assertRedirects(response, "/classes/1/", fetch_redirect_response=False)


def test_login_does_not_send_anyone_to_another_site(client):
    UserFactory.create(email="lea@school.test")
    response = client.post(
        LOGIN,
        {"username": "lea@school.test", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assertRedirects(response, "/", fetch_redirect_response=False)


def test_a_logged_in_user_visiting_the_login_page_goes_home(client):
    client.force_login(UserFactory.create())
    assertRedirects(client.get(LOGIN), "/", fetch_redirect_response=False)


def test_logout_is_a_post(client):
    """A link (a GET) cannot log anyone out; the form's POST does."""
    client.force_login(UserFactory.create())
    assert client.get(LOGOUT).status_code == 405
    assert SESSION_KEY in client.session
    response = client.post(LOGOUT)
    assertRedirects(response, LOGIN, fetch_redirect_response=False)
    assert SESSION_KEY not in client.session


def test_every_page_offers_the_logout_form(client):
    client.force_login(UserFactory.create())
    assertContains(client.get("/"), f'<form method="post" action="{LOGOUT}">')
