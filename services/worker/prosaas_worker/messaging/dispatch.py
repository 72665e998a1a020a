"""Sending due messages exactly once: claim, send, record.

One run of ``messages.send_due``:

1. **In-doubt check.** Rows left ``sending`` longer than ``MESSAGES_IN_DOUBT_AFTER_S`` were claimed by a
   worker that died mid-request. Each is looked up at the provider (:meth:`MessageChannel.find_sent`):
   found → ``sent`` with the provider's sid; not found → ``scheduled`` again. Nothing is re-sent blindly.
2. **Claim** up to ``MESSAGES_BATCH_SIZE`` due rows with ``FOR UPDATE SKIP LOCKED`` and mark them
   ``sending`` (committed before any request leaves, so two workers never send the same row). Rows whose
   reason went away — the appointment was cancelled, the lead left the follow-up's status — are cancelled
   in the same transaction.
3. **Send** them concurrently (``MESSAGES_SEND_CONCURRENCY``), then **record** every outcome in one
   transaction: ``sent``; ``failed`` (a permanent refusal, or the last attempt); or ``scheduled`` again
   with a jittered backoff. A DNS failure re-schedules the batch on the DNS policy (30 s, 60 s,
   120 s) and ends the run.

A callback from the provider may mark a row ``delivered`` before step 3 records it; recording only moves
rows that are still ``sending``, so it never overwrites a later status.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, bindparam, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prosaas_common.backoff import jittered_delay
from prosaas_common.db import unit_of_work
from prosaas_common.dns import DnsBackoff, is_dns_error
from prosaas_common.logging import RepeatedFailureLog, get_logger
from prosaas_common.messaging.planner import LIVE_APPOINTMENT, sending_number
from prosaas_common.models import (
    Appointment,
    FollowupRule,
    Lead,
    MessageAutomation,
    MessageStatus,
    OutboundMessage,
)
from prosaas_worker.messaging.channel import MessageChannel, Sender, SendError, SendResult
from prosaas_worker.settings import WorkerConfig

log = get_logger("prosaas.worker.messages")
DNS_TARGET = "messaging-provider"
_DNS = DnsBackoff(clock=time.time)
_FAILURES = RepeatedFailureLog(log)
# Backoff after a transient failure of attempt N (1-based), before jitter; the last value repeats.
RETRY_DELAYS_S = (30.0, 120.0, 600.0, 1800.0, 3600.0)
# Rows still ``sending`` become ``sent``; a status callback that got there first is left alone.
RECORD_SENT = text(
    """
    UPDATE outbound_messages AS m
    SET status = 'sent', provider_sid = v.sid, provider_status = v.pstatus, sent_at = now(),
        last_error = NULL, updated_at = now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:sids AS text[]), CAST(:pstatuses AS text[]))
         AS v(id, sid, pstatus)
    WHERE m.id = v.id AND m.status = 'sending'
    """
)
NO_NUMBER = "the business has no phone number to send from (add one in Settings → Phone numbers)"


@dataclass(frozen=True)
class Claimed:
    id: int
    business_id: int
    dedup_key: str
    to_number: str
    from_number: str | None
    body: str
    attempts: int


@dataclass
class Outcome:
    message: Claimed
    result: SendResult | None = None
    error: BaseException | None = None


@dataclass
class RunStats:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    reconciled: int = 0
    dns_failed: bool = field(default=False)

    @property
    def touched(self) -> int:
        return self.sent + self.failed + self.retried + self.cancelled + self.reconciled


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:500]


async def claim_batch(db: AsyncSession, size: int) -> list[Claimed]:
    due = (
        select(OutboundMessage.id)
        .where(OutboundMessage.status == MessageStatus.SCHEDULED.value, OutboundMessage.send_at <= func.now())
        .order_by(OutboundMessage.send_at, OutboundMessage.id)
        .limit(size)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = await db.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id.in_(due))
        .values(
            status=MessageStatus.SENDING.value, claimed_at=func.now(), attempts=OutboundMessage.attempts + 1
        )
        .returning(
            OutboundMessage.id,
            OutboundMessage.business_id,
            OutboundMessage.dedup_key,
            OutboundMessage.to_number,
            OutboundMessage.from_number,
            OutboundMessage.body,
            OutboundMessage.attempts,
        )
    )
    return [Claimed(*row) for row in rows.all()]


async def cancel_stale(db: AsyncSession, ids: list[int]) -> set[int]:
    """Cancel claimed rows whose reason went away; their ids."""
    stale_appointment = and_(
        OutboundMessage.automation_id.is_not(None),
        or_(
            Appointment.id.is_(None),
            Appointment.status.not_in(LIVE_APPOINTMENT),
            MessageAutomation.is_active.is_(False),
        ),
    )
    stale_followup = and_(
        OutboundMessage.followup_rule_id.is_not(None),
        or_(Lead.id.is_(None), FollowupRule.is_active.is_(False), Lead.status_id != FollowupRule.status_id),
    )
    stale = (
        select(OutboundMessage.id)
        .select_from(
            OutboundMessage.__table__.outerjoin(Appointment, Appointment.id == OutboundMessage.appointment_id)
            .outerjoin(Lead, Lead.id == OutboundMessage.lead_id)
            .outerjoin(FollowupRule, FollowupRule.id == OutboundMessage.followup_rule_id)
            .outerjoin(MessageAutomation, MessageAutomation.id == OutboundMessage.automation_id)
        )
        .where(OutboundMessage.id.in_(ids), or_(stale_appointment, stale_followup))
    )
    cancelled = set(
        await db.scalars(
            update(OutboundMessage)
            .where(OutboundMessage.id.in_(stale))
            .values(
                status=MessageStatus.CANCELLED.value,
                last_error="its appointment, automation or follow-up no longer applies",
            )
            .returning(OutboundMessage.id)
        )
    )
    return cancelled


async def fill_sending_numbers(db: AsyncSession, claimed: list[Claimed]) -> list[Claimed]:
    """Rows planned before the business had a number get its first number now (or stay None)."""
    numbers: dict[int, str | None] = {}
    filled: list[Claimed] = []
    for message in claimed:
        if message.from_number is None:
            if message.business_id not in numbers:
                numbers[message.business_id] = await sending_number(db, message.business_id)
            message = Claimed(**{**message.__dict__, "from_number": numbers[message.business_id]})
        filled.append(message)
    return filled


async def send_all(channel: MessageChannel, claimed: list[Claimed], concurrency: int) -> list[Outcome]:
    gate = asyncio.Semaphore(concurrency)

    async def send_one(message: Claimed) -> Outcome:
        if message.from_number is None:
            return Outcome(message, error=SendError(NO_NUMBER, permanent=True))
        sender = Sender(message.business_id, message.from_number, message.id)
        async with gate:
            try:
                result = await channel.send(sender, message.to_number, message.body, message.dedup_key)
            except Exception as exc:  # every failure is recorded on its row, none stops the batch
                return Outcome(message, error=exc)
        return Outcome(message, result=result)

    return list(await asyncio.gather(*(send_one(message) for message in claimed)))


async def record(
    session_factory: async_sessionmaker[AsyncSession], outcomes: list[Outcome], settings: WorkerConfig
) -> RunStats:
    stats = RunStats()
    now = datetime.now(UTC)
    sent: list[dict[str, object]] = []
    other: list[dict[str, object]] = []
    for outcome in outcomes:
        message, error = outcome.message, outcome.error
        if outcome.result is not None:
            sent.append(
                {
                    "m_id": message.id,
                    "sid": outcome.result.provider_sid,
                    "pstatus": outcome.result.provider_status,
                }
            )
            continue
        assert error is not None
        permanent = isinstance(error, SendError) and error.permanent
        if is_dns_error(error):
            stats.dns_failed = True
            delay = _DNS.delay_for(_DNS.failures(DNS_TARGET) + 1)
        else:
            delay = jittered_delay(RETRY_DELAYS_S, message.attempts)
        if permanent or (not is_dns_error(error) and message.attempts >= settings.messages_max_attempts):
            status, stats.failed = MessageStatus.FAILED.value, stats.failed + 1
        else:
            status, stats.retried = MessageStatus.SCHEDULED.value, stats.retried + 1
        other.append(
            {
                "m_id": message.id,
                "st": status,
                "err": short_error(error),
                "at": now + timedelta(seconds=delay),
            }
        )
    async with unit_of_work(session_factory) as db:
        table = cast(Table, OutboundMessage.__table__)
        still_sending = and_(table.c.id == bindparam("m_id"), table.c.status == MessageStatus.SENDING.value)
        if sent:  # one statement for the whole batch: the common case, kept cheap
            await db.execute(
                RECORD_SENT,
                {
                    "ids": [row["m_id"] for row in sent],
                    "sids": [row["sid"] for row in sent],
                    "pstatuses": [row["pstatus"] for row in sent],
                },
            )
        if other:
            await db.execute(
                update(table)
                .where(still_sending)
                .values(status=bindparam("st"), last_error=bindparam("err"), send_at=bindparam("at")),
                other,
            )
    stats.sent = len(sent)
    return stats


async def reconcile_in_doubt(
    session_factory: async_sessionmaker[AsyncSession], channel: MessageChannel, settings: WorkerConfig
) -> int:
    """Settle rows stuck in ``sending`` (their worker died): sent if the provider has them, else due again."""
    settled = 0
    async with unit_of_work(session_factory) as db:
        stuck = list(
            await db.scalars(
                select(OutboundMessage)
                .where(
                    OutboundMessage.status == MessageStatus.SENDING.value,
                    OutboundMessage.claimed_at
                    < func.now() - timedelta(seconds=settings.messages_in_doubt_after_s),
                )
                .order_by(OutboundMessage.claimed_at)
                .limit(settings.messages_batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        for message in stuck:
            assert message.claimed_at is not None
            if message.from_number is None:
                message.status = MessageStatus.SCHEDULED.value
                continue
            sender = Sender(message.business_id, message.from_number, message.id)
            try:
                found = await channel.find_sent(sender, message.to_number, message.body, message.claimed_at)
            except Exception as exc:  # the provider cannot tell now: leave the row in doubt, ask next run
                _FAILURES.failure(
                    "messages.in_doubt_lookup", "messages.in_doubt_lookup_failed", error=short_error(exc)
                )
                continue
            if found is None:
                message.status = MessageStatus.SCHEDULED.value
                message.send_at = func.now()
            else:
                message.status = MessageStatus.SENT.value
                message.provider_sid = found.provider_sid
                message.provider_status = found.provider_status
                message.sent_at = func.now()
            settled += 1
    if settled:
        log.info("messages.in_doubt_settled", count=settled)
    return settled


async def dispatch_due(
    session_factory: async_sessionmaker[AsyncSession],
    channel: MessageChannel,
    settings: WorkerConfig,
    *,
    max_batches: int,
) -> RunStats:
    """Steps 1 to 3 above until nothing is due (or ``max_batches``); the totals."""
    total = RunStats(reconciled=await reconcile_in_doubt(session_factory, channel, settings))
    size = settings.messages_batch_size
    # Recording batch N runs while batch N+1 is claimed and sent (the provider is the slow part).
    recording: asyncio.Task[RunStats] | None = None

    async def settle() -> bool:
        """Fold the previous batch's outcome in; False when the run must stop (DNS failure)."""
        nonlocal recording
        if recording is None:
            return True
        stats, recording = await recording, None
        total.sent += stats.sent
        total.failed += stats.failed
        total.retried += stats.retried
        if stats.dns_failed:
            _DNS.record_failure(DNS_TARGET)
            total.dns_failed = True
            return False
        if stats.sent:
            _DNS.record_success(DNS_TARGET)
        return True

    try:
        for _ in range(max_batches):
            async with unit_of_work(session_factory) as db:
                claimed = await claim_batch(db, size)
                cancelled = await cancel_stale(db, [m.id for m in claimed]) if claimed else set()
                ready = await fill_sending_numbers(db, [m for m in claimed if m.id not in cancelled])
            total.cancelled += len(cancelled)
            if ready:
                outcomes = await send_all(channel, ready, settings.messages_send_concurrency)
                if not await settle():
                    recording = asyncio.create_task(record(session_factory, outcomes, settings))
                    break
                recording = asyncio.create_task(record(session_factory, outcomes, settings))
            if len(claimed) < size:
                break
    finally:
        await settle()
    return total
