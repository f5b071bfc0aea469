"""What the relay's websocket tests share: sessions, sockets through the real ASGI application, and
a process with no room alive and no connect remembered at the start of each test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

from accounts.models import User
from config.asgi import application
from media_relay import consumers
from media_relay.rooms import RoomRegistry

ORIGIN = b"http://127.0.0.1"
TIMEOUT = 3


def session_cookie(user: User) -> bytes:
    """The cookie of a real logged-in session of `user`, as the lesson page's socket sends it."""
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


def communicator_for(
    key: str, cookie: bytes | None = None, origin: bytes | None = ORIGIN
) -> WebsocketCommunicator:
    """A socket to a lesson through the whole ASGI stack (Origin check, session, routing)."""
    headers = [(b"host", b"127.0.0.1")]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, f"/ws/lessons/{key}/", headers=headers)


async def disconnect_all(opened: list[WebsocketCommunicator]) -> None:
    """Disconnect the sockets a test opened, quietly.

    A socket whose application already ended is left alone: asgiref cancels the application when
    a receive times out, and a later `disconnect` would re-raise that cancellation (a
    BaseException) into the fixture's teardown. A consumer that crashed re-raises here too; the
    test that made it crash already failed.
    """
    for communicator in reversed(opened):
        if communicator.future.done():
            if not communicator.future.cancelled():
                # Retrieved, so that asyncio does not report it as never retrieved.
                communicator.future.exception()
            continue
        with contextlib.suppress(Exception):
            await communicator.disconnect(timeout=TIMEOUT)
    await close_database_thread()


async def close_database_thread() -> None:
    """Close the connections left open in asgiref's database thread.

    A consumer closes its connections when its database calls end; one whose application was
    cancelled, or whose last call was cut short by the test's end, leaves one open there, and
    PostgreSQL refuses to drop the test database at the end of the run while it is.
    """
    await sync_to_async(connections.close_all)()


@pytest_asyncio.fixture
async def sockets() -> AsyncIterator[list[WebsocketCommunicator]]:
    """Sockets opened by a test; each is disconnected when the test ends."""
    opened: list[WebsocketCommunicator] = []
    yield opened
    await disconnect_all(opened)


@pytest.fixture(autouse=True)
def _fresh_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no room alive in this process and no user's connects counted."""
    monkeypatch.setattr(consumers, "registry", RoomRegistry())
    monkeypatch.setattr(consumers, "connect_limiter", consumers.ConnectLimiter())
