"""Signing in to the API (session or token), and the schema and documentation pages."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from tests.api.conftest import World
from tests.factories import PASSWORD


@pytest.mark.django_db
def test_an_anonymous_caller_gets_401_with_a_token_challenge(world: World):
    response = APIClient().get("/api/v1/lessons/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_a_token_is_exchanged_for_email_and_password_and_authenticates(world: World):
    pupil = world.campus.pupil_x
    client = APIClient()
    response = client.post(
        "/api/v1/auth/token/", {"email": pupil.email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 200
    token = response.data["token"]
    assert client.post(
        "/api/v1/auth/token/", {"email": pupil.email, "password": PASSWORD}
    ).data == {"token": token}
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    schools = client.get("/api/v1/schools/")
    assert schools.status_code == 200
    assert [row["id"] for row in schools.data["results"]] == [world.campus.school_a.pk]


@pytest.mark.django_db
def test_a_revoked_token_stops_working(world: World):
    client = APIClient()
    token = client.post(
        "/api/v1/auth/token/", {"email": world.campus.teacher_x.email, "password": PASSWORD}
    ).data["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.delete("/api/v1/auth/token/").status_code == 204
    assert client.get("/api/v1/schools/").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("email", "password"),
    [
        pytest.param("pia@nowhere.test", PASSWORD, id="unknown email"),
        pytest.param(None, "wrong", id="wrong password"),
    ],
)
def test_wrong_credentials_get_one_message(world: World, email, password):
    email = email or world.campus.pupil_x.email
    response = APIClient().post("/api/v1/auth/token/", {"email": email, "password": password})
    assert response.status_code == 400
    assert response.data == {"non_field_errors": ["Unable to sign in with these credentials."]}


@pytest.mark.django_db
def test_a_deactivated_user_gets_no_token(world: World):
    response = APIClient().post(
        "/api/v1/auth/token/", {"email": world.campus.inactive_pupil_x.email, "password": PASSWORD}
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_bad_token_answers_401(world: World):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/schools/").status_code == 401


@pytest.mark.django_db
def test_session_writes_need_the_csrf_token(world: World):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.campus.pupil_x)
    notification = world.notifications["pupil_a"]
    response = client.post(f"/api/v1/notifications/{notification.pk}/read/")
    assert response.status_code == 403
    assert "CSRF" in str(response.data["detail"])


@pytest.mark.django_db
def test_the_schema_is_served_and_valid_openapi_3():
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # type: ignore[no-untyped-call]
    assert "/api/v1/lessons/{key}/cancel/" in schema["paths"]
    assert "/api/v1/me/timetable/" in schema["paths"]


@pytest.mark.django_db
def test_the_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))


@pytest.mark.django_db
def test_the_docs_page_loads_nothing_from_third_parties():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui-bundle.js" in html
    hosts = set(re.findall(r"https?://([^/\"'\s]+)", html))
    assert hosts <= {"testserver"}, f"the docs page reaches out to {hosts}"
    assets = re.findall(r"(?:src|href)=\"/static/([^\"]+)\"", html)
    assert len(assets) >= 3
    for asset in assets:
        assert finders.find(asset), f"{asset} is not shipped with the app"
    assert '"validatorUrl": null' in html
