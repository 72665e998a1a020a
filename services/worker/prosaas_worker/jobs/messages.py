"""Messages to leads: ``messages.send_due`` (every 30 s, and woken by one-off sends) and the planning
that ``events.dispatch`` runs for appointment and lead events.

Planning (:mod:`prosaas_common.messaging.planner`) is idempotent, so it simply re-plans from the current
rows on every ``appointment.*`` event (automations) and every ``lead.created`` / ``lead.status_changed``
(follow-up rules). Sending is :mod:`prosaas_worker.messaging.dispatch`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prosaas_common.jobs import JobName
from prosaas_common.logging import RepeatedFailureLog, get_logger
from prosaas_common.messaging.planner import plan_appointment, plan_followups
from prosaas_common.models import DomainEvent, MessageStatus, OutboundMessage
from prosaas_worker.context import JobContext, get_resources
from prosaas_worker.jobs import events
from prosaas_worker.messaging.channel import MessageChannel
from prosaas_worker.messaging.dispatch import dispatch_due
from prosaas_worker.messaging.twilio_sms import TwilioSms
from prosaas_worker.registry import JobSpec, job
from prosaas_worker.settings import WorkerConfig

# Batches per run at most (each MESSAGES_BATCH_SIZE rows); what is left waits for the next run.
MAX_BATCHES = 200
APPOINTMENT_EVENTS = ("appointment.created", "appointment.updated", "appointment.cancelled")
LEAD_EVENTS = ("lead.created", "lead.status_changed")

log = get_logger("prosaas.worker.messages")
_not_configured = RepeatedFailureLog(log, every=100)


async def due_count(session_factory: async_sessionmaker[AsyncSession]) -> int:
    async with session_factory() as db:
        count = await db.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(
                OutboundMessage.status == MessageStatus.SCHEDULED.value, OutboundMessage.send_at <= func.now()
            )
        )
        return int(count or 0)


def sms_channel(settings: WorkerConfig) -> MessageChannel | None:
    """The SMS channel for this run, or None when no Twilio account is configured."""
    if not settings.twilio_configured:
        return None
    assert settings.twilio_account_sid is not None
    assert settings.twilio_auth_token is not None
    return TwilioSms(
        base_url=settings.twilio_api_base_url,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        status_callback=f"https://{settings.public_host}/webhook/sms_status",
        concurrency=settings.messages_send_concurrency,
        timeout=settings.messages_http_timeout,
    )


async def send_due(ctx: JobContext, scheduled_for: str | datetime | None = None) -> int:
    """Send every due message (see dispatch); returns how many were handed to the provider."""
    resources = get_resources(ctx)
    channel = sms_channel(resources.settings)
    if channel is None:
        # Messages stay scheduled (nothing is lost); when some are due, say so once, then rarely.
        waiting = await due_count(resources.session_factory)
        if waiting:
            _not_configured.failure(
                "twilio",
                "messages.not_configured",
                due=waiting,
                detail="set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
            )
        return 0
    try:
        stats = await dispatch_due(
            resources.session_factory, channel, resources.settings, max_batches=MAX_BATCHES
        )
    finally:
        await channel.aclose()
    fields = {
        "sent": stats.sent,
        "failed": stats.failed,
        "retried": stats.retried,
        "cancelled": stats.cancelled,
        "reconciled": stats.reconciled,
    }
    if stats.touched:
        log.info("messages.sent", **fields)
    else:
        log.debug("messages.sent", **fields, scheduled_for=str(scheduled_for) if scheduled_for else None)
    return stats.sent


async def plan_for_appointment(ctx: JobContext, db: AsyncSession, event: DomainEvent) -> None:
    appointment_id = event.payload.get("id")
    if isinstance(appointment_id, int):
        result = await plan_appointment(db, appointment_id, datetime.now(UTC))
        if result.changed:
            log.debug("messages.planned", appointment_id=appointment_id, **result.__dict__)


async def plan_for_lead(ctx: JobContext, db: AsyncSession, event: DomainEvent) -> None:
    lead = event.payload.get("lead")
    lead_id = event.payload.get("lead_id") or (lead.get("id") if isinstance(lead, dict) else None)
    if isinstance(lead_id, int):
        result = await plan_followups(db, lead_id, datetime.now(UTC))
        if result.changed:
            log.debug("messages.planned", lead_id=lead_id, **result.__dict__)


def register_handlers() -> None:
    """Plan messages inside ``events.dispatch`` for the events that change them (once)."""
    for names, handler in ((APPOINTMENT_EVENTS, plan_for_appointment), (LEAD_EVENTS, plan_for_lead)):
        for event_type in names:
            handlers = events.HANDLERS.get(event_type, ())
            if handler not in handlers:
                events.HANDLERS[event_type] = (*handlers, handler)


register_handlers()

JOBS: tuple[JobSpec, ...] = (job(send_due, name=JobName.MESSAGES_SEND_DUE, max_tries=1, timeout_s=600),)
