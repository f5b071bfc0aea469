"""The authorisation matrix: every route under /api/, every method, every role of two schools.

Routes are read from the URL configuration, not listed by hand, and compared with the table
below both ways: a route added without a row fails the test naming it, and so does a row left
behind by a removed route. Path parameters are filled with school A's rows. Each request runs in
a transaction rolled back afterwards, so a write by one role leaves the next role the same world.

Statuses are exact. Anonymous callers get 401 (the API offers token authentication first, whose
`WWW-Authenticate: Token` challenge makes DRF answer 401, not 403). A pupil or guardian who tries
to change the timetable gets 403, whatever the row; a teacher or admin who names a row out of
reach gets 404 (a lesson, a series) or 400 (a class id in a body), like a missing one. A method a
route does not offer answers 405 to everyone signed in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver

from tests.api.conftest import ROLES, World, client_for
from tests.factories import PASSWORD

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# Column order: anonymous, then pupil, teacher, guardian, admin of school A, then of school B.
ALL_200 = "401 200 200 200 200 200 200 200 200"
NOT_ALLOWED = "401 405 405 405 405 405 405 405 405"
SCHOOL_A_ONLY = "401 200 200 200 200 404 404 404 404"
ROSTER_X = "401 200 200 404 200 404 404 404 404"
SCHEDULE_ROW = "401 403 200 403 200 403 404 403 404"
SCHEDULE_NEW = "401 403 201 403 201 403 400 403 400"
OWNER_ONLY = "401 200 404 404 404 404 404 404 404"
PUBLIC = "200 200 200 200 200 200 200 200 200"
PUBLIC_NOT_ALLOWED = "405 405 405 405 405 405 405 405 405"


def read_only(get: str) -> dict[str, str]:
    return {"GET": get, "POST": NOT_ALLOWED, "PUT": NOT_ALLOWED, "PATCH": NOT_ALLOWED,
            "DELETE": NOT_ALLOWED}  # fmt: skip


def only(method: str, expected: str, *, others: str = NOT_ALLOWED) -> dict[str, str]:
    return {m: expected if m == method else others for m in METHODS}


MATRIX: dict[str, dict[str, str]] = {
    "api/schema/": only("GET", PUBLIC, others=PUBLIC_NOT_ALLOWED),
    "api/docs/": only("GET", PUBLIC, others=PUBLIC_NOT_ALLOWED),
    "api/v1/auth/token/": {
        "GET": NOT_ALLOWED,
        "POST": PUBLIC,
        "PUT": NOT_ALLOWED,
        "PATCH": NOT_ALLOWED,
        "DELETE": "401 204 204 204 204 204 204 204 204",
    },
    "api/v1/me/timetable/": read_only(ALL_200),
    "api/v1/schools/": read_only(ALL_200),
    "api/v1/schools/<school_id>/": read_only(SCHOOL_A_ONLY),
    "api/v1/terms/": read_only(ALL_200),
    "api/v1/terms/<term_id>/": read_only(SCHOOL_A_ONLY),
    "api/v1/courses/": read_only(ALL_200),
    "api/v1/courses/<course_id>/": read_only(SCHOOL_A_ONLY),
    "api/v1/classes/": read_only(ALL_200),
    "api/v1/classes/<class_id>/": read_only(ROSTER_X),
    "api/v1/enrollments/": read_only(ALL_200),
    "api/v1/enrollments/<enrollment_id>/": read_only(ROSTER_X),
    "api/v1/lessons/": {**read_only(ALL_200), "POST": SCHEDULE_NEW},
    "api/v1/lessons/<key>/": {
        "GET": ROSTER_X,
        "POST": NOT_ALLOWED,
        "PUT": SCHEDULE_ROW,
        "PATCH": SCHEDULE_ROW,
        "DELETE": NOT_ALLOWED,
    },
    "api/v1/lessons/<key>/cancel/": only("POST", SCHEDULE_ROW),
    "api/v1/series/": {**read_only(ALL_200), "POST": SCHEDULE_NEW},
    "api/v1/series/<series_id>/": read_only(ROSTER_X),
    "api/v1/series/<series_id>/update-from/": only("POST", SCHEDULE_ROW),
    "api/v1/series/<series_id>/cancel-from/": only("POST", SCHEDULE_ROW),
    "api/v1/notifications/": read_only(ALL_200),
    "api/v1/notifications/<notification_id>/": read_only(OWNER_ONLY),
    "api/v1/notifications/<notification_id>/read/": only("POST", OWNER_ONLY),
    "api/v1/notifications/read-all/": only("POST", ALL_200),
}

# School A's rows that fill each path parameter.
PARAMETERS: dict[str, Callable[[World], str]] = {
    "school_id": lambda w: str(w.campus.school_a.pk),
    "term_id": lambda w: str(w.campus.class_x.term_id),
    "course_id": lambda w: str(w.campus.class_x.course_id),
    "class_id": lambda w: str(w.campus.class_x.pk),
    "enrollment_id": lambda w: str(w.enrollment_pupil_x.pk),
    "key": lambda w: w.later_x.key,
    "series_id": lambda w: str(w.series_x.pk),
    "notification_id": lambda w: str(w.notifications["pupil_a"].pk),
}


def _iso(hour: int, day: int = 13) -> str:
    return datetime(2025, 3, day, hour, tzinfo=UTC).isoformat()


# A body that a permitted caller's write accepts, per route and method.
BODIES: dict[tuple[str, str], Callable[[World], dict[str, Any]]] = {
    ("api/v1/auth/token/", "POST"): lambda w: {
        "email": w.campus.pupil_x.email,
        "password": PASSWORD,
    },
    ("api/v1/lessons/", "POST"): lambda w: {
        "school_class": w.campus.class_x.pk,
        "title": "Extra help",
        "starts_at": _iso(7),
        "ends_at": _iso(8),
    },
    ("api/v1/lessons/<key>/", "PUT"): lambda w: {
        "title": "Decimals (moved)",
        "starts_at": _iso(12, day=14),
        "ends_at": _iso(13, day=14),
    },
    ("api/v1/lessons/<key>/", "PATCH"): lambda w: {"title": "Decimals, again"},
    ("api/v1/series/", "POST"): lambda w: {
        "school_class": w.campus.class_x.pk,
        "title": "Tuesday drill",
        "weekdays": ["TU"],
        "start_time": "08:00",
        "duration_minutes": 45,
        "starts_on": "2025-03-18",
        "ends_on": "2025-04-29",
    },
    ("api/v1/series/<series_id>/update-from/", "POST"): lambda w: {
        "from_date": "2025-03-20",
        "title": "Thursday practice",
    },
    ("api/v1/series/<series_id>/cancel-from/", "POST"): lambda w: {"from_date": "2025-03-20"},
}


def _no_body(world: World) -> dict[str, Any]:
    return {}


_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def _route(pattern: URLPattern | URLResolver) -> str:
    """A pattern as the table writes it: `lessons/<key>/`, from a path or a router's regex."""
    text = str(pattern.pattern)
    text = text.removeprefix("^").removesuffix("$").removesuffix("\\Z")
    return _CONVERTER.sub(r"<\1>", _GROUP.sub(r"<\1>", text))


def _walk(patterns: list[URLPattern | URLResolver], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + _route(pattern))
        else:
            yield prefix + _route(pattern)


def api_routes() -> list[str]:
    return sorted({r for r in _walk(get_resolver().url_patterns) if r.startswith("api/")})


def _url(route: str, world: World) -> str:
    return "/" + re.sub(r"<(\w+)>", lambda m: PARAMETERS[m.group(1)](world), route)


def matrix_gaps(routes: list[str]) -> list[str]:
    """What keeps the table and the URL configuration apart, one sentence per route."""
    missing = sorted(set(routes) - MATRIX.keys())
    stale = sorted(MATRIX.keys() - set(routes))
    return [f"API route missing from the authorisation matrix: /{r}" for r in missing] + [
        f"matrix row for a route that no longer exists: /{r}" for r in stale
    ]


def test_every_api_route_has_a_row_and_every_row_a_route():
    """A route without a row in the matrix, or a row without a route, fails naming it."""
    gaps = matrix_gaps(api_routes())
    assert not gaps, "\n".join(gaps)
    for route, row in MATRIX.items():
        assert set(row) == set(METHODS), f"{route}: give an expectation for every method"
        for method, codes in row.items():
            assert len(codes.split()) == len(ROLES), f"{route} {method}: one status per role"


def test_the_route_walk_finds_the_router_and_the_path_routes():
    """The walk sees through includes and routers: a guard against a walk that finds nothing."""
    routes = api_routes()
    assert "api/v1/lessons/<key>/cancel/" in routes
    assert "api/v1/me/timetable/" in routes
    assert len(routes) >= 20


def test_a_route_added_without_a_row_is_named(settings):
    """The check above fails on a new route (here from a URL configuration with one more)."""
    settings.ROOT_URLCONF = "tests.api.urls_with_extra_route"
    assert matrix_gaps(api_routes()) == [
        "API route missing from the authorisation matrix: /api/v1/extra/<thing_id>/"
    ]


def test_a_row_without_its_route_is_named():
    routes = [r for r in api_routes() if r != "api/v1/series/<series_id>/cancel-from/"]
    assert matrix_gaps(routes) == [
        "matrix row for a route that no longer exists: /api/v1/series/<series_id>/cancel-from/"
    ]


def _school_of_row(route: str, row: dict[str, Any]) -> int:
    return int(row["id"] if route == "api/v1/schools/" else row["school"])


CASES = [
    pytest.param(route, method, id=f"{method} /{route}")
    for route in sorted(MATRIX)
    for method in METHODS
]


@pytest.mark.parametrize(("route", "method"), CASES)
def test_each_role_gets_exactly_the_expected_status(world: World, route: str, method: str):
    """Every role of both schools gets the table's status; lists hold only the caller's school."""
    expected = dict(zip(ROLES, (int(code) for code in MATRIX[route][method].split()), strict=True))
    url = _url(route, world)
    body = BODIES.get((route, method), _no_body)(world)
    got: dict[str, int] = {}
    for role in ROLES:
        with transaction.atomic():
            client = client_for(world.person(role))
            response = client.generic(
                method, url, data=json.dumps(body), content_type="application/json"
            )
            got[role] = response.status_code
            if response.status_code == 200 and method == "GET" and "results" in response.data:
                schools = {_school_of_row(route, row) for row in response.data["results"]}
                assert schools <= {world.school_of(role)}, (
                    f"{role} sees rows of another school in /{route}: {schools}"
                )
            transaction.set_rollback(True)
    assert got == expected, f"{method} /{route}"


LIST_ROUTES = sorted(route for route, row in MATRIX.items() if row["GET"] == ALL_200)


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_lists_hold_rows_for_both_schools(world: World, route: str):
    """The isolation check above means something only if both schools' lists hold rows."""
    for role in ROLES[1:]:
        response = client_for(world.person(role)).get("/" + route)
        assert response.status_code == 200
        if role.startswith(("pupil", "teacher")) or route in GUARDIAN_LISTS:
            assert response.data["count"] >= 1, f"{role} sees nothing in /{route}"


# What a guardian reads: the school, its calendar and their own bell; no class or lesson.
GUARDIAN_LISTS = {
    "api/v1/schools/",
    "api/v1/terms/",
    "api/v1/courses/",
    "api/v1/notifications/",
}
