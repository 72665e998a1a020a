"""Small helpers for the scheduler tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from arq.connections import ArqRedis

from prosaas_common.jobs import Queue
from prosaas_scheduler.runner import Scheduler
from prosaas_scheduler.schedule import Schedule


class MakeScheduler(Protocol):
    def __call__(self, schedules: Sequence[Schedule], **options: Any) -> Scheduler: ...


class FakeClock:
    """A settable UTC clock for driving ``Scheduler.tick`` without waiting."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def queued_job_ids(pool: ArqRedis, queue: Queue = Queue.DEFAULT) -> list[str]:
    """Job ids waiting on ``queue``, oldest enqueue first."""
    raw: list[bytes] = await pool.zrange(queue.value, 0, -1)
    return [item.decode() for item in raw]


def slot_epochs(job_ids: Sequence[str], name: str) -> list[int]:
    """The slot epochs of the ``schedule:{name}:{epoch}`` job ids, sorted (duplicates kept)."""
    prefix = f"schedule:{name}:"
    return sorted(int(j.removeprefix(prefix)) for j in job_ids if j.startswith(prefix))
