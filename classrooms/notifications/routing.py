"""Websocket route of the bell."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.urls import path

from classrooms.notifications.consumers import NotificationConsumer

if TYPE_CHECKING:
    from channels.routing import URLRouter, _ExtendedURLPattern

# As in media_relay.routing: Django's path() stubs know only views, hence the ignore and cast.
websocket_urlpatterns: list[_ExtendedURLPattern | URLRouter] = [
    cast(
        "_ExtendedURLPattern",
        path("ws/notifications/", NotificationConsumer.as_asgi()),  # type: ignore[arg-type]
    ),
]
