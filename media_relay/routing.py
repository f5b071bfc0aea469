"""Websocket routes: one per lesson, keyed by the lesson's unguessable key."""

from django.urls import path

from media_relay.consumers import LessonConsumer

websocket_urlpatterns = [
    path("ws/lessons/<str:lesson_key>/", LessonConsumer.as_asgi()),
]
