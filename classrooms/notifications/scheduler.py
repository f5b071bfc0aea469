"""The periodic services run inside the web process, for the embedded default (`make demo`).

Production runs them from Celery beat (`CELERY_BEAT_SCHEDULE`). The embedded default has no beat
and no worker, so the web process runs them itself when `HOMEROOM_PERIODIC_IN_PROCESS_SECONDS` is
set: an asyncio task on the server's own event loop, started by the first request or websocket
(daphne speaks no ASGI lifespan), calling each service in a worker thread. Running in the server
process, on its loop, is what lets a reminder reach the in-memory channel layer, and so the bell,
live; a separate process could not push to daphne's sockets. A failing service is logged and
tried again at the next tick; the loop never dies of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from asgiref.typing import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from channels.db import database_sync_to_async
from django.utils import timezone

from classrooms import services as classroom_services
from classrooms.notifications import services as notification_services

logger = logging.getLogger(__name__)


def periodic_run_once() -> dict[str, int | None]:
    """Run every periodic service once; a service that raises is logged and reported as None."""
    now = timezone.now()
    results: dict[str, int | None] = {}
    jobs: dict[str, Callable[[], int]] = {
        "lessons_end_finished": lambda: classroom_services.lessons_end_finished(now=now),
        "reminders_send": lambda: notification_services.reminders_send(now=now),
    }
    for name, job in jobs.items():
        try:
            results[name] = job()
        except Exception:
            logger.exception("periodic %s failed; it runs again at the next tick", name)
            results[name] = None
    return results


async def periodic_loop(*, every: float, iterations: int | None = None) -> None:
    """Run the periodic services every `every` seconds, `iterations` times or forever."""
    done = 0
    while iterations is None or done < iterations:
        try:
            await database_sync_to_async(periodic_run_once)()
        except Exception:  # e.g. the thread pool is shutting down
            logger.exception("periodic tick failed")
        done += 1
        if iterations is None or done < iterations:
            await asyncio.sleep(every)


class PeriodicInProcess:
    """ASGI middleware that starts `periodic_loop` on the server's event loop at its first call,
    and keeps a reference to the task (an unreferenced task may be collected mid-run)."""

    def __init__(self, app: ASGI3Application, *, every: float) -> None:
        self.app = app
        self.every = every
        self.task: asyncio.Task[None] | None = None

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(periodic_loop(every=self.every))
        await self.app(scope, receive, send)
