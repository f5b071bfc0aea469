"""`LessonRecords`: classrooms' implementation of the relay's `LessonRecorder` port.

A thin adapter: each method calls one service or selector of `classrooms.live` and turns rows into
the port's frozen dataclasses, so no model instance reaches the relay. The relay calls it through
`database_sync_to_async`; each call is one short transaction. A call whose ids do not belong
together raises `LessonRecordError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from classrooms.live import selectors, services
from classrooms.models import ChatMessage
from media_relay.ports import ChatLine, Grants


def _chat_line(message: ChatMessage) -> ChatLine:
    return ChatLine(
        id=message.pk,
        author_id=message.author_id,
        author_name=message.author.display_name,
        body=message.body,
        sent_at=message.sent_at,
    )


class LessonRecords:
    """Records what the relay saw and what teachers decided, in the school's database."""

    def presence_opened(self, *, lesson_id: int, user_id: int, at: datetime) -> None:
        services.presence_open(lesson_id=lesson_id, user_id=user_id, at=at)

    def presence_closed(self, *, lesson_id: int, user_id: int, at: datetime) -> None:
        services.presence_close(lesson_id=lesson_id, user_id=user_id, at=at)

    def presence_seen(self, *, lesson_id: int, user_ids: Sequence[int], at: datetime) -> None:
        services.presence_heartbeat(lesson_id=lesson_id, user_ids=user_ids, at=at)

    def grants_saved(
        self, *, lesson_id: int, user_id: int, grants: Grants, by_user_id: int
    ) -> None:
        services.participant_grants_save(
            lesson_id=lesson_id,
            user_id=user_id,
            mic=grants.mic,
            camera=grants.camera,
            screen=grants.screen,
            by_user_id=by_user_id,
        )

    def participant_removed(self, *, lesson_id: int, user_id: int, by_user_id: int) -> None:
        services.participant_remove(lesson_id=lesson_id, user_id=user_id, by_user_id=by_user_id)

    def participant_readmitted(self, *, lesson_id: int, user_id: int, by_user_id: int) -> None:
        services.participant_readmit(lesson_id=lesson_id, user_id=user_id, by_user_id=by_user_id)

    def chat_posted(self, *, lesson_id: int, user_id: int, body: str) -> ChatLine:
        message = services.chat_message_post(lesson_id=lesson_id, user_id=user_id, body=body)
        return _chat_line(message)

    def chat_deleted(self, *, lesson_id: int, message_id: int, by_user_id: int) -> bool:
        return services.chat_message_delete(
            lesson_id=lesson_id, message_id=message_id, by_user_id=by_user_id
        )

    def chat_history(self, *, lesson_id: int, limit: int) -> list[ChatLine]:
        return [
            _chat_line(message)
            for message in selectors.chat_history(lesson_id=lesson_id, limit=limit)
        ]

    def lesson_ended(self, *, lesson_id: int, by_user_id: int) -> None:
        services.lesson_end(lesson_id=lesson_id, by_user_id=by_user_id)
