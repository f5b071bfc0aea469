"""Websocket routes: one per lesson, keyed by the lesson's unguessable key."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.urls import path

from media_relay.consumers import LessonConsumer

if TYPE_CHECKING:
    from channels.routing import URLRouter, _ExtendedURLPattern

# Channels routes ASGI applications through Django's path(), whose stubs know only views: the
# ignore and the cast say what Channels' URLRouter really receives.
websocket_urlpatterns: list[_ExtendedURLPattern | URLRouter] = [
    cast(
        "_ExtendedURLPattern",
        path("ws/lessons/<str:lesson_key>/", LessonConsumer.as_asgi()),  # type: ignore[arg-type]
    ),
]
