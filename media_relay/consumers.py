"""The lesson websocket: admits rostered users and speaks the signalling schema.

Thin by design: it asks the access port once at connect (in a thread, since that reads the
database) and hands parsed messages to methods. A refused user is accepted and closed at once with
the refusal's code, because a close before `accept()` reaches the browser only as an HTTP 403.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from media_relay import signalling
from media_relay.ports import Admission, Refusal, lesson_access_policy

logger = logging.getLogger(__name__)


class LessonConsumer(AsyncWebsocketConsumer):
    admission: Admission | None = None

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=Refusal.NOT_ON_ROSTER)
            return
        lesson_key = self.scope["url_route"]["kwargs"]["lesson_key"]
        result = await database_sync_to_async(lesson_access_policy().admit)(
            user_id=user.pk, lesson_key=lesson_key
        )
        if isinstance(result, Refusal):
            await self.close(code=result)
            return
        self.admission = result
        await self.send(
            text_data=signalling.dump(
                "hello",
                lesson={"key": result.lesson_key, "title": result.lesson_title},
                you={"name": result.display_name, "role": result.role.value},
                endsAt=result.ends_at.isoformat(),
            )
        )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.admission is None:
            return
        if text_data is None:
            await self.send(
                text_data=signalling.dump("error", code="bad-message", detail="Text only.")
            )
            return
        try:
            message = signalling.parse(text_data)
        except signalling.SignallingError as error:
            logger.info("lesson %s: rejected message: %s", self.admission.lesson_key, error.code)
            await self.send(
                text_data=signalling.dump("error", code=error.code, detail=error.detail)
            )
            return
        await getattr(self, f"on_{message.type}")(message.body)

    async def on_ping(self, body: dict[str, Any]) -> None:
        await self.send(text_data=signalling.dump("pong"))
