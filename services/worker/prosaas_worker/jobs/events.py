"""Domain events: ``dispatch_event(event_id)`` hands one ``domain_events`` row on and marks it dispatched.

The producer wrote the row in its own transaction and enqueued this job after the commit (job id
``event:{id}``). The row is locked while it is handled, so a duplicate job waits and then sees it
dispatched. Fan-out to the business's outbound webhooks and follow-up rules hooks in here
(:data:`HANDLERS`); an event type without handlers is simply marked dispatched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.db import unit_of_work
from prosaas_common.events import DISPATCH_JOB
from prosaas_common.logging import get_logger
from prosaas_common.models import DomainEvent
from prosaas_worker.context import JobContext, get_resources
from prosaas_worker.registry import JobSpec, job

log = get_logger("prosaas.worker.events")

EventHandler = Callable[[JobContext, AsyncSession, DomainEvent], Awaitable[None]]
# event type → handlers run in the dispatch transaction.
HANDLERS: dict[str, tuple[EventHandler, ...]] = {}


async def dispatch_event(ctx: JobContext, event_id: int) -> str:
    """Returns ``dispatched``, ``skipped`` (already done) or ``missing``."""
    async with unit_of_work(get_resources(ctx).session_factory) as db:
        event = await db.scalar(select(DomainEvent).where(DomainEvent.id == event_id).with_for_update())
        if event is None:
            log.debug("event.missing", event_id=event_id)
            return "missing"
        if event.dispatched_at is not None:
            log.debug("event.skipped", event_id=event_id, type=event.type)
            return "skipped"
        for handler in HANDLERS.get(event.type, ()):
            await handler(ctx, db, event)
        event.dispatched_at = func.now()
        log.debug("event.dispatched", event_id=event_id, type=event.type, business_id=event.business_id)
        return "dispatched"


JOBS: tuple[JobSpec, ...] = (job(dispatch_event, name=DISPATCH_JOB, max_tries=5, timeout_s=60),)
