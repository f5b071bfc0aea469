"""The bell's websocket: one per open page of a logged-in user, fed by the notification services.

Thin: it joins the user's group at connect and relays the group's messages to the page as JSON.
It reads nothing from the database; the unread count comes with each message. Anonymous sockets
are accepted and closed at once with 4403 (a close before `accept()` reaches the browser only as
an HTTP 403).
"""

from __future__ import annotations

import json
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from classrooms.notifications.services import group_for_user

CLOSE_FORBIDDEN = 4403


class NotificationConsumer(AsyncWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = group_for_user(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The bell only listens; whatever a client sends is ignored."""

    async def notification_created(self, event: dict[str, Any]) -> None:
        await self._relay("created", unread=event["unread"], notification=event["notification"])

    async def notification_unread(self, event: dict[str, Any]) -> None:
        await self._relay("unread", unread=event["unread"])

    async def _relay(self, type_: str, **body: Any) -> None:
        await self.send(text_data=json.dumps({"type": type_, **body}))
