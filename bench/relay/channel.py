"""The local signalling channel between the load generator and the relay process.

A `multiprocessing` pipe carries requests `("request", id, op, args)` and replies
`("reply", id, error, result)`.
A daemon thread blocks on the pipe and hands each message to the event loop, so neither side's
loop ever blocks on it; requests are served concurrently (one task each), as a room would.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


class Channel:
    """One end of the pipe, bound to the running event loop."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._loop = asyncio.get_running_loop()
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._handler: Handler | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()
        threading.Thread(target=self._read, name="bench-channel", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                self._loop.call_soon_threadsafe(self.closed.set)
                return
            self._loop.call_soon_threadsafe(self._dispatch, message)

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        if message[0] == "request":
            task = self._loop.create_task(self._serve(*message[1:]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        _, ident, error, result = message
        future = self._pending.pop(ident, None)
        if future is None or future.done():
            return
        if error is not None:
            future.set_exception(RuntimeError(f"relay: {error}"))
        else:
            future.set_result(result)

    async def _serve(self, ident: int, op: str, args: dict[str, Any]) -> None:
        try:
            if self._handler is None:
                raise RuntimeError("this end serves no requests")
            result = await self._handler(op, args)
        except Exception as exc:
            self._conn.send(("reply", ident, repr(exc), None))
        else:
            self._conn.send(("reply", ident, None, result))

    def serve(self, handler: Handler) -> None:
        """Answer the other end's requests with `handler(op, args)`."""
        self._handler = handler

    async def call(self, op: str, **args: Any) -> Any:
        """Send a request and wait for its reply."""
        ident = next(self._ids)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._pending[ident] = future
        self._conn.send(("request", ident, op, args))
        return await future
