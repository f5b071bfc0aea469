"""The bell's websocket, through the real ASGI application: session-authenticated, Origin-checked,
and fed live by the services."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import User
from classrooms.notifications import services
from config.asgi import application
from tests.classrooms.notifications.conftest import Soon, build_soon

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = b"http://127.0.0.1"
TIMEOUT = 3


def session_cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


def bell_socket(cookie: bytes | None = None, origin: bytes = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"host", b"127.0.0.1"), (b"origin", origin)]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/notifications/", headers=headers)


@pytest.fixture
def soon(frozen_now) -> Soon:
    return build_soon()


async def test_a_reminder_made_while_the_bell_is_open_arrives_on_it(soon: Soon, frozen_now):
    cookie = await database_sync_to_async(session_cookie)(soon.pupils[0])
    socket = bell_socket(cookie)
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert connected
    sent = await database_sync_to_async(services.reminders_send)(now=frozen_now)
    assert sent == 3
    message = json.loads(await socket.receive_from(timeout=TIMEOUT))
    assert message["type"] == "created"
    assert message["unread"] == 1
    assert message["notification"]["title"] == "Fractions starts at 10:38"
    assert message["notification"]["url"] == f"/lessons/{soon.lesson.key}/"
    assert await socket.receive_nothing(timeout=0.2)
    await socket.disconnect()


async def test_marking_all_read_updates_every_open_bell(soon: Soon, frozen_now):
    pupil = soon.pupils[0]
    await database_sync_to_async(services.reminders_send)(now=frozen_now)
    cookie = await database_sync_to_async(session_cookie)(pupil)
    socket = bell_socket(cookie)
    assert (await socket.connect(timeout=TIMEOUT))[0]
    await database_sync_to_async(services.notifications_mark_all_read)(
        user=pupil, now=timezone.now()
    )
    assert json.loads(await socket.receive_from(timeout=TIMEOUT)) == {"type": "unread", "unread": 0}
    await socket.disconnect()


async def test_someone_else_s_reminder_does_not_arrive(soon: Soon, frozen_now):
    cookie = await database_sync_to_async(session_cookie)(soon.other_pupil)
    socket = bell_socket(cookie)
    assert (await socket.connect(timeout=TIMEOUT))[0]
    await database_sync_to_async(services.reminders_send)(now=frozen_now)
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_an_anonymous_bell_is_closed_with_4403(db):
    socket = bell_socket()
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert connected
    assert await socket.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4403}


async def test_a_foreign_origin_is_refused(soon: Soon):
    cookie = await database_sync_to_async(session_cookie)(soon.pupils[0])
    connected, _ = await bell_socket(cookie, origin=b"https://evil.test").connect(timeout=TIMEOUT)
    assert not connected
