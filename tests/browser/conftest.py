"""A real Homeroom server and Debian's Chromium for browser tests.

The server is a daphne subprocess on a free port, on a database of its own built by the same
commands `make demo` runs (`migrate`, `seed_demo`): a fresh SQLite file, or a fresh database on
the PostgreSQL server that DATABASE_URL names, with the Redis channel layer when REDIS_URL is set.
Tests talk to it only over HTTP and websockets, as a browser does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Remote audio plays without a click, as it does after a real user's Join click.
    "--autoplay-policy=no-user-gesture-required",
]
PASSWORD = "homeroom-demo"
ARTIFACTS = ROOT / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
    )


@contextmanager
def new_server_database(folder: Path) -> Iterator[str]:
    """A DATABASE_URL for a server: a new database on the test stack's engine (a SQLite file in
    `folder`, or a database on the PostgreSQL server of DATABASE_URL), dropped afterwards."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield f"sqlite:///{folder / 'homeroom.sqlite3'}"
        return
    name = f"homeroom_browser_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def server_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A DATABASE_URL for the shared server: a new database on the test stack's engine."""
    with new_server_database(tmp_path_factory.mktemp("browser")) as url:
        yield url


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@dataclass(frozen=True)
class DemoServer:
    """A running daphne: its base URL and process id (benchmarks read its CPU time)."""

    base: str
    pid: int


class Daphne:
    """daphne serving the demo on one port; a test may stop it and start it again there, on the
    same database, as a deployment restarts the server."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log_path.open("w")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "daphne is not running"
        return self.process.pid

    def start(self) -> None:
        """Start daphne and wait until it answers /healthz."""
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "config.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.process = process
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError(f"daphne did not start; see {self.log.name}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """Terminate daphne (SIGTERM, as a process manager stops it) and wait until it is gone."""
        if self.process is not None:
            _stop(self.process)
            self.process = None


@contextmanager
def run_restartable_demo_server(
    database_url: str, data_dir: Path, log_dir: Path, *, redis_db: int = 15
) -> Iterator[Daphne]:
    """Migrate and seed a database, then serve it with daphne until the block ends.

    On the production stack (REDIS_URL set) tasks go through Redis, so a Celery worker runs beside
    the server, as in production. The server uses its own Redis database (`redis_db`), so tasks
    that the test process itself queues never reach it; a second server beside the shared one
    needs another, or each one's worker would run the other's tasks on the wrong database. The
    relay accepts loopback ICE candidates, since the browser and the server meet on 127.0.0.1.
    The worker keeps running while daphne restarts.
    """
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HOMEROOM_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "HOMEROOM_RELAY_ALLOW_LOOPBACK": "1",
    }
    if env.get("REDIS_URL"):
        env["REDIS_URL"] = urlunsplit(urlsplit(env["REDIS_URL"])._replace(path=f"/{redis_db}"))
    _manage(env, "migrate", "--noinput")
    _manage(env, "seed_demo")
    worker = None
    if env.get("REDIS_URL"):
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "config", "worker"),
                *("--pool=solo", "--without-gossip", "--without-mingle", "-l", "WARNING"),
            ],
            cwd=ROOT,
            env=env,
            stdout=(log_dir / "celery.log").open("w"),
            stderr=subprocess.STDOUT,
        )
    daphne = Daphne(env, log_dir / "daphne.log")
    try:
        daphne.start()
        yield daphne
    finally:
        daphne.stop()
        if worker is not None:
            _stop(worker)
        daphne.log.close()


@contextmanager
def run_demo_server(database_url: str, data_dir: Path, log_dir: Path) -> Iterator[DemoServer]:
    """Migrate and seed a database, then serve it with daphne until the block ends (see
    `run_restartable_demo_server`)."""
    with run_restartable_demo_server(database_url, data_dir, log_dir) as daphne:
        yield DemoServer(base=daphne.base, pid=daphne.pid)


@pytest.fixture(scope="session")
def demo_server(server_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a daphne server holding the demo school."""
    with run_demo_server(
        server_database,
        tmp_path_factory.mktemp("server-data"),
        tmp_path_factory.mktemp("server-log"),
    ) as server:
        yield server.base


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where browser tests leave screenshots for people to look at (ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def log_in(page: Page, base: str, email: str) -> None:
    """Log in with the demo password and land on the home page."""
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hello")


def person(browser: Browser, base: str, email: str) -> tuple[BrowserContext, Page]:
    """A logged-in person in a browser context of their own (own cookies, own fake devices)."""
    own = browser.new_context(viewport={"width": 1280, "height": 900})
    page = own.new_page()
    log_in(page, base, email)
    return own, page
