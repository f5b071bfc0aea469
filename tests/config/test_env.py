"""Reading settings from environment variables: database URLs, flags, lists, required values."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import env
from config.env import MissingSetting, database_from_url

BASE = Path("/srv/homeroom")


class TestDatabaseFromUrl:
    def test_a_postgres_url_gives_every_part(self):
        assert database_from_url(
            "postgres://homeroom:s3cret@db.internal:5433/homeroom_prod", base_dir=BASE
        ) == {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "homeroom_prod",
            "USER": "homeroom",
            "PASSWORD": "s3cret",
            "HOST": "db.internal",
            "PORT": "5433",
            "CONN_MAX_AGE": 0,
            "OPTIONS": {},
        }

    @pytest.mark.parametrize("scheme", ["postgres", "postgresql", "pgsql", "POSTGRES"])
    def test_every_postgres_scheme_spelling_is_read(self, scheme):
        config = database_from_url(f"{scheme}://u:p@h:5432/x", base_dir=BASE)
        assert config["ENGINE"] == "django.db.backends.postgresql"

    def test_percent_encoded_credentials_are_decoded(self):
        config = database_from_url("postgres://us%40er:p%40ss%3Aword@h:5432/x", base_dir=BASE)
        assert (config["USER"], config["PASSWORD"]) == ("us@er", "p@ss:word")

    def test_without_a_port_the_port_is_left_to_libpq(self):
        config = database_from_url("postgres://u:p@db.internal/x", base_dir=BASE)
        assert (config["HOST"], config["PORT"]) == ("db.internal", "")

    def test_without_credentials_user_and_password_are_empty(self):
        config = database_from_url("postgres://127.0.0.1:5432/x", base_dir=BASE)
        assert (config["USER"], config["PASSWORD"], config["HOST"]) == ("", "", "127.0.0.1")

    def test_a_socket_directory_host_keeps_its_case(self):
        config = database_from_url("postgres://u@%2Fvar%2FRun%2Fpostgresql/x", base_dir=BASE)
        assert config["HOST"] == "/var/Run/postgresql"

    def test_query_parameters_become_options(self):
        config = database_from_url(
            "postgres://u:p@h:5432/x?sslmode=require&application_name=homeroom", base_dir=BASE
        )
        assert config["OPTIONS"] == {"sslmode": "require", "application_name": "homeroom"}

    def test_a_bracketed_ipv6_host_reaches_libpq_without_brackets(self):
        """libpq wants `::1`, not `[::1]`, in its host parameter."""
        config = database_from_url("postgres://u:p@[::1]:5432/x", base_dir=BASE)
        assert (config["HOST"], config["PORT"]) == ("::1", "5432")

    def test_persistent_connections_stay_off(self):
        for url in ("postgres://u:p@h:5432/x", "sqlite:///db.sqlite3"):
            assert database_from_url(url, base_dir=BASE)["CONN_MAX_AGE"] == 0

    def test_a_relative_sqlite_path_is_under_the_project(self):
        config = database_from_url("sqlite:///var/homeroom.sqlite3", base_dir=BASE)
        assert config == {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": "/srv/homeroom/var/homeroom.sqlite3",
            "CONN_MAX_AGE": 0,
        }

    def test_an_absolute_sqlite_path_is_kept(self):
        config = database_from_url("sqlite:////tmp/homeroom/db.sqlite3", base_dir=BASE)
        assert config["NAME"] == "/tmp/homeroom/db.sqlite3"  # noqa: S108 -- a path, never opened

    def test_a_sqlite_url_without_a_path_is_refused(self):
        with pytest.raises(ImproperlyConfigured, match="file path"):
            database_from_url("sqlite:///", base_dir=BASE)

    def test_a_postgres_url_without_a_database_name_is_refused(self):
        with pytest.raises(ImproperlyConfigured, match="name the database"):
            database_from_url("postgres://u:p@h:5432/", base_dir=BASE)

    @pytest.mark.parametrize(
        "url", ["mysql://u:p@h/x", "redis://h:6379/0", "db.sqlite3", "", "http://h/x"]
    )
    def test_an_unsupported_scheme_is_refused(self, url):
        with pytest.raises(ImproperlyConfigured, match="not supported"):
            database_from_url(url, base_dir=BASE)


class TestFlagsAndLists:
    @pytest.mark.parametrize("raw", ["1", "true", "YES", " on "])
    def test_yes_words_are_true(self, monkeypatch, raw):
        monkeypatch.setenv("HOMEROOM_TEST_FLAG", raw)
        assert env.flag("HOMEROOM_TEST_FLAG", default=False) is True

    @pytest.mark.parametrize("raw", ["0", "false", "No", "off"])
    def test_no_words_are_false(self, monkeypatch, raw):
        monkeypatch.setenv("HOMEROOM_TEST_FLAG", raw)
        assert env.flag("HOMEROOM_TEST_FLAG", default=True) is False

    def test_an_unset_or_empty_flag_takes_its_default(self, monkeypatch):
        monkeypatch.delenv("HOMEROOM_TEST_FLAG", raising=False)
        assert env.flag("HOMEROOM_TEST_FLAG", default=True) is True
        monkeypatch.setenv("HOMEROOM_TEST_FLAG", "")
        assert env.flag("HOMEROOM_TEST_FLAG", default=False) is False

    def test_a_flag_that_is_neither_yes_nor_no_is_an_error(self, monkeypatch):
        monkeypatch.setenv("HOMEROOM_TEST_FLAG", "sometimes")
        with pytest.raises(ImproperlyConfigured, match="HOMEROOM_TEST_FLAG"):
            env.flag("HOMEROOM_TEST_FLAG", default=True)

    def test_lists_are_comma_separated_and_trimmed(self):
        assert env.split_list(" a.example, b.example ,,") == ["a.example", "b.example"]
        assert env.split_list("") == []

    def test_a_required_value_falls_back_only_while_debugging(self, monkeypatch):
        monkeypatch.delenv("HOMEROOM_TEST_VALUE", raising=False)
        assert env.required("HOMEROOM_TEST_VALUE", debug=True, why="w", default="d") == "d"
        with pytest.raises(MissingSetting) as raised:
            env.required("HOMEROOM_TEST_VALUE", debug=False, why="it matters")
        assert raised.value.name == "HOMEROOM_TEST_VALUE"
        assert "HOMEROOM_TEST_VALUE must be set when DJANGO_DEBUG=0: it matters." in str(
            raised.value
        )

    def test_a_required_value_that_is_set_is_used_even_in_production(self, monkeypatch):
        monkeypatch.setenv("HOMEROOM_TEST_VALUE", " set ")
        assert env.required("HOMEROOM_TEST_VALUE", debug=False, why="w") == "set"

    def test_the_development_secret_is_made_once_and_kept_private(self, tmp_path):
        path = tmp_path / "nested" / "dev-secret-key"
        key = env.dev_secret_key(path)
        assert len(key) >= 50
        assert path.stat().st_mode & 0o777 == 0o600
        assert env.dev_secret_key(path) == key
