"""Saving what is said while the call runs, off the audio path.

:meth:`TurnWriter.add` only queues (the session calls it from its audio loop); one writer task per call
inserts what is queued into ``call_turns`` — everything waiting at that moment in one statement — so a
crash of the process loses at most the turns of the last few milliseconds, never the conversation.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prosaas_common.db import unit_of_work
from prosaas_common.logging import RepeatedFailureLog, get_logger
from prosaas_common.models import CallTurn

log = get_logger("prosaas.calls.turns")
_failures = RepeatedFailureLog(log)
MAX_TEXT = 10_000


class TurnWriter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, call_id: int, business_id: int) -> None:
        self._sessions = sessions
        self._call_id = call_id
        self._business_id = business_id
        self._queue: asyncio.Queue[dict[str, object] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.saved = 0

    def add(self, speaker: str, text: str, offset_ms: int) -> None:
        if text.strip():
            row = {"speaker": speaker, "text": text.strip()[:MAX_TEXT], "offset_ms": max(0, offset_ms)}
            self._queue.put_nowait(row)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"turns:{self._call_id}")

    async def _run(self) -> None:
        while (first := await self._queue.get()) is not None:
            batch = [first]
            closing = False
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    closing = True
                    break
                batch.append(item)
            await self._save(batch)
            if closing:
                return

    async def _save(self, batch: list[dict[str, object]]) -> None:
        rows = [{"call_id": self._call_id, "business_id": self._business_id, **row} for row in batch]
        try:
            async with unit_of_work(self._sessions) as db:
                await db.execute(insert(CallTurn), rows)
        except Exception as exc:  # the database is down: the call goes on, the turns are lost and said so
            _failures.failure(
                "turns", "call.turns_not_saved", call_id=self._call_id, error=type(exc).__name__
            )
            return
        self.saved += len(rows)

    async def close(self) -> None:
        """Save what is still queued and stop the writer."""
        self._queue.put_nowait(None)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
