"""Job queues and a typed enqueue helper shared by the services that produce work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from arq.constants import result_key_prefix

from prosaas_common.db import after_commit

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from arq.jobs import Job
    from sqlalchemy.ext.asyncio import AsyncSession


class Queue(StrEnum):
    """arq queues by urgency. The value is the Redis key of the queue's sorted set."""

    HIGH = "arq:queue:high"
    DEFAULT = "arq:queue:default"
    LOW = "arq:queue:low"

    @property
    def short_name(self) -> str:
        return self.value.rsplit(":", 1)[-1]

    @classmethod
    def from_name(cls, name: str) -> Queue:
        """``high`` / ``default`` / ``low`` (or the full key) to a queue; ValueError names the choices."""
        cleaned = name.strip().lower()
        for queue in cls:
            if cleaned in (queue.short_name, queue.value):
                return queue
        choices = ", ".join(q.short_name for q in cls)
        raise ValueError(f"unknown queue {name!r} (choose from {choices})")


class JobName(StrEnum):
    """Every job the workers run, named ``domain.action``: producers enqueue these names, the worker
    registers its functions under them."""

    SYSTEM_PING = "system.ping"
    EMAIL_DELIVER = "email.deliver"
    EVENTS_DISPATCH = "events.dispatch"
    LEADS_IMPORT = "leads.import"
    LEADS_BULK = "leads.bulk"
    WEBHOOKS_DELIVER = "webhooks.deliver"
    WEBHOOKS_RECOVER = "webhooks.recover"
    REMINDERS_SEND_DUE = "reminders.send_due"
    MESSAGES_SEND_DUE = "messages.send_due"
    MAINTENANCE_CLEANUP = "maintenance.cleanup"
    WHATSAPP_CHECK_SESSIONS = "whatsapp.check_sessions"
    CALLS_FINALIZE = "calls.finalize"
    CALLS_FETCH_RECORDING = "calls.fetch_recording"
    CALLS_PLACE_OUTBOUND = "calls.place_outbound"
    CALLS_RUN_OUTBOUND = "calls.run_outbound"


async def enqueue(
    pool: ArqRedis,
    function: str,
    *args: Any,
    queue: Queue = Queue.DEFAULT,
    job_id: str | None = None,
    defer_until: datetime | None = None,
    defer_by: timedelta | None = None,
    **kwargs: Any,
) -> Job | None:
    """Enqueue ``function`` on ``queue``. With ``job_id`` a second enqueue of a live job returns None."""
    return await pool.enqueue_job(
        function,
        *args,
        _queue_name=queue.value,
        _job_id=job_id,
        _defer_until=defer_until,
        _defer_by=defer_by,
        **kwargs,
    )


# The one job id of "run messages.send_due soon": a burst of one-off sends queues a single run.
MESSAGES_WAKE_JOB_ID = "messages:send_due:wake"


def wake_after_commit(
    session: AsyncSession,
    pool: Callable[[], Awaitable[ArqRedis]],
    function: str,
    *,
    job_id: str,
    queue: Queue = Queue.DEFAULT,
) -> None:
    """Once ``session`` committed, ask for one run of ``function`` under the fixed ``job_id``.

    A run already waiting absorbs the request (arq drops a second job with the same id). arq would
    also drop it for an hour after a run *finished*, because the result is kept under that id, so the
    stale result is cleared first.
    """

    async def send() -> None:
        redis = await pool()
        await redis.delete(result_key_prefix + job_id)
        await enqueue(redis, function, queue=queue, job_id=job_id)

    after_commit(session, send)


def enqueue_after_commit(
    session: AsyncSession,
    pool: Callable[[], Awaitable[ArqRedis]],
    function: str,
    *args: Any,
    queue: Queue = Queue.DEFAULT,
    job_id: str | None = None,
    **kwargs: Any,
) -> None:
    """Enqueue once ``session`` committed, so a worker never sees a row that was rolled back."""

    async def send() -> None:
        await enqueue(await pool(), function, *args, queue=queue, job_id=job_id, **kwargs)

    after_commit(session, send)


def email_job_id(email_id: int) -> str:
    """The arq job id of an outbox row's delivery, so a second enqueue of a live job is dropped."""
    return f"email:{email_id}"


def deliver_email_after_commit(
    session: AsyncSession,
    pool: Callable[[], Awaitable[ArqRedis]],
    email_id: int,
    *,
    queue: Queue = Queue.DEFAULT,
) -> None:
    """``email.deliver`` of outbox row ``email_id`` once ``session`` committed (``HIGH`` when a person
    waits for the e-mail: password reset, invitation)."""
    enqueue_after_commit(
        session, pool, JobName.EMAIL_DELIVER, email_id, queue=queue, job_id=email_job_id(email_id)
    )
