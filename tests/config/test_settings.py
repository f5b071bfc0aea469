"""Settings from the environment: the embedded default, production, and failing fast.

Each case starts Django in a subprocess whose environment is built from scratch (PATH and HOME
only, plus what the case sets), so the DATABASE_URL or REDIS_URL of the run that launched the
tests cannot leak in, and settings are read fresh, as at a server's start. The subprocesses are
independent, so they all run at once, before the tests read their results.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "DJANGO_ALLOWED_HOSTS": "homeroom.example,www.homeroom.example",
    # `check` does not connect: nothing needs to listen at these addresses.
    "DATABASE_URL": "postgres://u:p@127.0.0.1:5432/x",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}
REQUIRED = ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL")

PRINT_SETTINGS = """
import json
import django
from django.conf import settings
django.setup()
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "SECRET_KEY": settings.SECRET_KEY,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "DATABASE": {k: v for k, v in settings.DATABASES["default"].items() if k != "TEST"},
    "CHANNEL_LAYERS": settings.CHANNEL_LAYERS,
    "CELERY_TASK_ALWAYS_EAGER": settings.CELERY_TASK_ALWAYS_EAGER,
    "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    "EMAIL_BACKEND": settings.EMAIL_BACKEND,
    "SECURE_SSL_REDIRECT": getattr(settings, "SECURE_SSL_REDIRECT", False),
    "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": settings.CSRF_COOKIE_SECURE,
    "SECURE_HSTS_SECONDS": settings.SECURE_HSTS_SECONDS,
}, default=str))
"""
CHECK = ["manage.py", "check"]
SETTINGS = ["-c", PRINT_SETTINGS]


def without(name: str) -> dict[str, str]:
    return {key: value for key, value in PRODUCTION.items() if key != name}


@dataclass(frozen=True)
class Case:
    args: list[str]
    variables: dict[str, str]
    # Cases that share a data directory run one after the other, in the order listed.
    data_dir: str = ""


CASES: dict[str, Case] = {
    **{f"check without {name}": Case(CHECK, without(name)) for name in REQUIRED},
    **{
        f"asgi without {name}": Case(["-c", "import config.asgi"], without(name))
        for name in ("DJANGO_SECRET_KEY", "DATABASE_URL")
    },
    "check with an empty REDIS_URL": Case(CHECK, {**PRODUCTION, "REDIS_URL": "  "}),
    "check with DJANGO_DEBUG=maybe": Case(CHECK, {**PRODUCTION, "DJANGO_DEBUG": "maybe"}),
    "check with a mysql URL": Case(
        CHECK, {**PRODUCTION, "DATABASE_URL": "mysql://u:p@127.0.0.1/x"}
    ),
    "check --deploy in production": Case(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION
    ),
    "production settings": Case(SETTINGS, PRODUCTION),
    "production on sqlite": Case(
        SETTINGS, {**PRODUCTION, "DATABASE_URL": "sqlite:////tmp/homeroom-test/h.sqlite3"}
    ),
    "no environment, first start": Case(SETTINGS, {}, data_dir="embedded"),
    "no environment, second start": Case(SETTINGS, {}, data_dir="embedded"),
    "no environment, check": Case(CHECK, {}),
}


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    data_dir: Path

    def settings(self) -> dict[str, Any]:
        assert self.returncode == 0, self.stderr
        loaded: dict[str, Any] = json.loads(self.stdout.strip().splitlines()[-1])
        return loaded


def run(case: Case, home: Path) -> Outcome:
    data_dir = home / "data"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "HOMEROOM_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **case.variables,
    }
    result = subprocess.run(
        [sys.executable, *case.args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Outcome(result.returncode, result.stdout, result.stderr, data_dir)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    """Run every case once, concurrently; cases sharing a data directory run in order."""
    chains: dict[str, list[str]] = {}
    for name, case in CASES.items():
        chains.setdefault(case.data_dir or name, []).append(name)

    def run_chain(key: str) -> dict[str, Outcome]:
        home = tmp_path_factory.mktemp("home")
        return {name: run(CASES[name], home) for name in chains[key]}

    with ThreadPoolExecutor(max_workers=4) as pool:
        results: dict[str, Outcome] = {}
        for done in pool.map(run_chain, chains):
            results.update(done)
    return results


class TestFailFast:
    @pytest.mark.parametrize("missing", REQUIRED)
    def test_production_stops_on_a_missing_variable_and_names_it(self, outcomes, missing):
        outcome = outcomes[f"check without {missing}"]
        assert outcome.returncode != 0
        assert f"{missing} must be set when DJANGO_DEBUG=0" in outcome.stderr
        assert "Traceback" not in outcome.stderr

    @pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DATABASE_URL"])
    def test_the_asgi_server_stops_on_a_missing_variable_and_names_it(self, outcomes, missing):
        """daphne imports config.asgi: start-up fails there, with the variable named."""
        outcome = outcomes[f"asgi without {missing}"]
        assert outcome.returncode != 0
        assert f"{missing} must be set when DJANGO_DEBUG=0" in outcome.stderr

    def test_an_empty_value_counts_as_missing(self, outcomes):
        outcome = outcomes["check with an empty REDIS_URL"]
        assert outcome.returncode != 0
        assert "REDIS_URL must be set" in outcome.stderr

    def test_a_debug_flag_that_is_neither_yes_nor_no_stops_start_up(self, outcomes):
        outcome = outcomes["check with DJANGO_DEBUG=maybe"]
        assert outcome.returncode != 0
        assert "DJANGO_DEBUG='maybe' is not a boolean" in outcome.stderr

    def test_an_unsupported_database_scheme_stops_start_up(self, outcomes):
        outcome = outcomes["check with a mysql URL"]
        assert outcome.returncode != 0
        assert "DATABASE_URL scheme 'mysql' is not supported" in outcome.stderr


class TestProduction:
    def test_check_deploy_passes_under_production_settings(self, outcomes):
        outcome = outcomes["check --deploy in production"]
        assert outcome.returncode == 0, outcome.stdout + outcome.stderr
        assert "no issues" in outcome.stdout

    def test_production_reads_postgres_redis_and_secure_cookies_from_the_environment(
        self, outcomes
    ):
        loaded = outcomes["production settings"].settings()
        assert loaded["DEBUG"] is False
        assert loaded["SECRET_KEY"] == PRODUCTION["DJANGO_SECRET_KEY"]
        assert loaded["ALLOWED_HOSTS"] == ["homeroom.example", "www.homeroom.example"]
        database = loaded["DATABASE"]
        assert database["ENGINE"] == "django.db.backends.postgresql"
        assert (database["NAME"], database["USER"], database["HOST"]) == ("x", "u", "127.0.0.1")
        assert database["CONN_MAX_AGE"] == 0
        layer = loaded["CHANNEL_LAYERS"]["default"]
        assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
        assert layer["CONFIG"]["hosts"] == [PRODUCTION["REDIS_URL"]]
        assert loaded["CELERY_BROKER_URL"] == PRODUCTION["REDIS_URL"]
        assert loaded["CELERY_TASK_ALWAYS_EAGER"] is False
        assert loaded["SECURE_SSL_REDIRECT"] is True
        assert loaded["SESSION_COOKIE_SECURE"] is True
        assert loaded["CSRF_COOKIE_SECURE"] is True
        assert loaded["SECURE_HSTS_SECONDS"] > 0

    def test_production_may_run_on_a_sqlite_file(self, outcomes):
        database = outcomes["production on sqlite"].settings()["DATABASE"]
        assert database["ENGINE"] == "django.db.backends.sqlite3"
        assert database["NAME"] == "/tmp/homeroom-test/h.sqlite3"  # noqa: S108 -- never opened


class TestEmbeddedDefault:
    def test_with_no_environment_it_runs_on_sqlite_and_the_in_memory_layer(self, outcomes):
        outcome = outcomes["no environment, first start"]
        loaded = outcome.settings()
        assert loaded["DEBUG"] is True
        assert loaded["DATABASE"]["ENGINE"] == "django.db.backends.sqlite3"
        assert loaded["DATABASE"]["NAME"] == str(outcome.data_dir / "homeroom.sqlite3")
        assert loaded["CHANNEL_LAYERS"]["default"]["BACKEND"] == (
            "channels.layers.InMemoryChannelLayer"
        )
        assert loaded["CELERY_TASK_ALWAYS_EAGER"] is True
        assert loaded["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
        assert "127.0.0.1" in loaded["ALLOWED_HOSTS"]
        assert "localhost" in loaded["ALLOWED_HOSTS"]

    def test_with_no_secret_it_generates_one_once_and_warns(self, outcomes):
        first = outcomes["no environment, first start"]
        second = outcomes["no environment, second start"]
        assert "WARNING: DJANGO_SECRET_KEY is not set" in first.stderr
        secret_file = first.data_dir / "dev-secret-key"
        assert secret_file.stat().st_mode & 0o777 == 0o600
        key = secret_file.read_text().strip()
        assert len(key) >= 50
        assert first.settings()["SECRET_KEY"] == second.settings()["SECRET_KEY"] == key

    def test_the_embedded_default_passes_check(self, outcomes):
        outcome = outcomes["no environment, check"]
        assert outcome.returncode == 0, outcome.stderr
        assert "no issues" in outcome.stdout
