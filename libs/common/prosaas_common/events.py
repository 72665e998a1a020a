"""Recording domain events: a ``domain_events`` row in the caller's transaction, then the
``events.dispatch`` job enqueued after commit (on the default queue, job id ``event:{id}``).

The worker's ``events.dispatch`` hands the event on (outbound webhooks, follow-up rules) and marks it
dispatched; an event whose enqueue was lost stays undispatched in the table, never half-sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from prosaas_common.jobs import JobName, Queue, enqueue_after_commit
from prosaas_common.models import DomainEvent

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from sqlalchemy.ext.asyncio import AsyncSession

DISPATCH_JOB = JobName.EVENTS_DISPATCH
JobPool = Callable[[], Awaitable["ArqRedis"]]


def event_job_id(event_id: int) -> str:
    return f"event:{event_id}"


async def record_event(
    db: AsyncSession, pool: JobPool, business_id: int, event_type: str, payload: dict[str, Any]
) -> DomainEvent:
    """Write the event in the current transaction; its dispatch job is enqueued once that commits."""
    event = DomainEvent(business_id=business_id, type=event_type, payload=payload)
    db.add(event)
    await db.flush()
    enqueue_after_commit(db, pool, DISPATCH_JOB, event.id, queue=Queue.DEFAULT, job_id=event_job_id(event.id))
    return event
