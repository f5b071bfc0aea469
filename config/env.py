"""Read Homeroom's settings from the environment.

Settings come from environment variables so that one settings module serves the embedded default
(no environment at all) and production. A value that production needs and that is missing stops
start-up with a message naming the variable, rather than running half-configured.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class MissingSetting(ImproperlyConfigured):
    """A variable that production needs is not set."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name} must be set when DJANGO_DEBUG=0: {why}.")
        self.name = name


def flag(name: str, *, default: bool) -> bool:
    """Read a boolean variable; anything but a clear yes or no is a configuration error."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1 or 0.")


def text(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def required(name: str, *, debug: bool, why: str, default: str = "") -> str:
    """A variable that may fall back to an embedded default only while DEBUG is on."""
    value = text(name)
    if value:
        return value
    if not debug:
        raise MissingSetting(name, why)
    return default


def json_list(name: str) -> list[dict[str, Any]]:
    """Read a JSON list of objects (e.g. ICE servers); empty when unset."""
    raw = text(name)
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} is not valid JSON.") from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ImproperlyConfigured(f"{name} must be a JSON list of objects.")
    return value


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def database_from_url(url: str, *, base_dir: Path) -> dict[str, Any]:
    """Turn `postgres://user:password@host:port/name` or `sqlite:///path` into a DATABASES entry.

    Persistent connections stay off (CONN_MAX_AGE=0): under ASGI every request runs in its own
    thread-sensitive context, and a kept-alive connection would leak one per context.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative/path and sqlite:////absolute/path, as dj-database-url reads them.
        raw_path = unquote(parts.path)
        path = raw_path[1:] if raw_path.startswith("/") else raw_path
        if not path:
            raise ImproperlyConfigured("DATABASE_URL sqlite:/// needs a file path.")
        file = Path(path) if Path(path).is_absolute() else base_dir / path
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(file), "CONN_MAX_AGE": 0}
    if scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured("DATABASE_URL must name the database: postgres://.../NAME")
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": _host(parts.netloc, has_port=parts.port is not None),
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 0,
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {scheme!r} is not supported; use postgres:// or sqlite:///."
    )


def _host(netloc: str, *, has_port: bool) -> str:
    """The host part of a netloc, unquoted, case kept.

    Not `urlsplit().hostname`, which lowercases: a host such as %2Frun%2Fpostgresql is a socket
    directory (libpq's convention) and keeps its case.
    """
    host = netloc.rsplit("@", 1)[-1]
    if has_port:
        host = host.rsplit(":", 1)[0]
    # An IPv6 literal is bracketed in a URL ([::1]) but not in libpq's host parameter.
    return unquote(host.removeprefix("[").removesuffix("]"))


def dev_secret_key(path: Path) -> str:
    """A secret generated once per checkout for the embedded default, kept out of git."""
    from django.core.management.utils import get_random_secret_key

    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = get_random_secret_key()
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key
