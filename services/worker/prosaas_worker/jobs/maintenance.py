"""Daily cleanup: ``maintenance.cleanup`` (03:15 UTC from the scheduler, ``low`` queue) deletes rows that
have outlived their use, so the tables that grow with traffic stay small.

Each table is emptied in bounded batches, ``DELETE … WHERE id IN (SELECT id … LIMIT n FOR UPDATE SKIP
LOCKED)``, one short transaction per batch: no long lock, no huge WAL burst, and a row some request holds
right now is simply left for the next run. Only rows that nothing reads or writes any more qualify, so a
second run (or two at once) deletes nothing more: the job is idempotent. What goes:

* password-reset links that expired or were used, once out of the one-hour window that counts links
  per account (the reset rate limit counts those rows);
* refresh tokens that expired (a used, unexpired one stays: presenting it again is how a copied token is
  detected), and sign-in sessions that expired or were revoked (their tokens go with them);
* finished ``background_jobs``, ``delivered``/``dead`` webhook deliveries, dispatched domain events,
  ``sent``/``failed`` outbound e-mails and read notifications, older than ``CLEANUP_RETENTION_DAYS``;
* dead letters older than ``CLEANUP_DEAD_LETTER_RETENTION_DAYS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, delete, func, or_, select

from prosaas_common.db import Base, unit_of_work
from prosaas_common.jobs import JobName
from prosaas_common.logging import get_logger
from prosaas_common.models import (
    AuthSession,
    BackgroundJob,
    DeadLetter,
    DeliveryStatus,
    DomainEvent,
    EmailStatus,
    JobState,
    Notification,
    OutboundEmail,
    PasswordResetToken,
    RefreshToken,
    WebhookDelivery,
)
from prosaas_worker.context import JobContext, get_resources
from prosaas_worker.registry import JobSpec, job
from prosaas_worker.settings import WorkerConfig

# Rows per DELETE (one transaction each) and batches per table per run: a backlog bigger than
# BATCH * MAX_BATCHES is finished by the following runs, keeping one run well inside its timeout.
BATCH = 1000
MAX_BATCHES = 500
# password reset links are counted per account over the last hour (issue_password_link's rate limit).
RESET_RATE_WINDOW = timedelta(hours=1)

log = get_logger("prosaas.worker.maintenance")

Condition = Callable[[WorkerConfig], ColumnElement[bool]]


@dataclass(frozen=True)
class Rule:
    """Which rows of one table have outlived their use (``where`` is built from the settings)."""

    table: str
    model: type[Base]
    where: Condition


def _days_ago(days: int) -> ColumnElement[Any]:
    """A cutoff on the database clock, so the worker's clock never decides what is old."""
    return func.now() - timedelta(days=days)


def _reset_tokens(_: WorkerConfig) -> ColumnElement[bool]:
    return and_(
        or_(PasswordResetToken.expires_at < func.now(), PasswordResetToken.used_at.is_not(None)),
        PasswordResetToken.created_at < func.now() - RESET_RATE_WINDOW,
    )


def _refresh_tokens(_: WorkerConfig) -> ColumnElement[bool]:
    return RefreshToken.expires_at < func.now()


def _auth_sessions(_: WorkerConfig) -> ColumnElement[bool]:
    # An access token of a revoked session is refused through Redis (auth:revoked_session:*), not this row.
    return or_(AuthSession.expires_at < func.now(), AuthSession.revoked_at.is_not(None))


def _background_jobs(config: WorkerConfig) -> ColumnElement[bool]:
    return and_(
        BackgroundJob.state.in_([JobState.SUCCEEDED.value, JobState.FAILED.value]),
        func.coalesce(BackgroundJob.finished_at, BackgroundJob.created_at)
        < _days_ago(config.cleanup_retention_days),
    )


def _webhook_deliveries(config: WorkerConfig) -> ColumnElement[bool]:
    return and_(
        WebhookDelivery.status.in_([DeliveryStatus.DELIVERED.value, DeliveryStatus.DEAD.value]),
        func.coalesce(WebhookDelivery.delivered_at, WebhookDelivery.created_at)
        < _days_ago(config.cleanup_retention_days),
    )


def _domain_events(config: WorkerConfig) -> ColumnElement[bool]:
    # Undispatched events are the outbox and never expire.
    return DomainEvent.dispatched_at < _days_ago(config.cleanup_retention_days)


def _outbound_emails(config: WorkerConfig) -> ColumnElement[bool]:
    return and_(
        OutboundEmail.status.in_([EmailStatus.SENT.value, EmailStatus.FAILED.value]),
        func.coalesce(OutboundEmail.sent_at, OutboundEmail.created_at)
        < _days_ago(config.cleanup_retention_days),
    )


def _notifications(config: WorkerConfig) -> ColumnElement[bool]:
    return Notification.read_at < _days_ago(config.cleanup_retention_days)


def _dead_letters(config: WorkerConfig) -> ColumnElement[bool]:
    return DeadLetter.created_at < _days_ago(config.cleanup_dead_letter_retention_days)


# In this order: deliveries before the events they point at (their FK is SET NULL, which would
# otherwise update rows about to be deleted), refresh tokens before sessions (so their count is theirs).
RULES: tuple[Rule, ...] = (
    Rule("password_reset_tokens", PasswordResetToken, _reset_tokens),
    Rule("refresh_tokens", RefreshToken, _refresh_tokens),
    Rule("auth_sessions", AuthSession, _auth_sessions),
    Rule("background_jobs", BackgroundJob, _background_jobs),
    Rule("webhook_deliveries", WebhookDelivery, _webhook_deliveries),
    Rule("domain_events", DomainEvent, _domain_events),
    Rule("outbound_emails", OutboundEmail, _outbound_emails),
    Rule("notifications", Notification, _notifications),
    Rule("dead_letters", DeadLetter, _dead_letters),
)


async def delete_batch(ctx: JobContext, rule: Rule) -> int:
    """Delete at most ``BATCH`` rows of ``rule`` in one transaction; how many went."""
    resources = get_resources(ctx)
    pk = rule.model.__table__.c.id
    ids = select(pk).where(rule.where(resources.settings)).limit(BATCH).with_for_update(skip_locked=True)
    statement = delete(rule.model).where(pk.in_(ids)).execution_options(synchronize_session=False)
    async with unit_of_work(resources.session_factory) as db:
        result = cast("CursorResult[Any]", await db.execute(statement))
        return int(result.rowcount or 0)


async def clean_table(ctx: JobContext, rule: Rule) -> int:
    deleted = 0
    for _ in range(MAX_BATCHES):
        count = await delete_batch(ctx, rule)
        deleted += count
        if count < BATCH:
            break
    return deleted


async def cleanup(ctx: JobContext, scheduled_for: str | datetime | None = None) -> dict[str, int]:
    """Delete what has outlived its use (see the module docstring); returns the rows deleted per table."""
    counts = {rule.table: await clean_table(ctx, rule) for rule in RULES}
    deleted = {table: count for table, count in counts.items() if count}
    if deleted:
        log.info("cleanup.done", deleted=deleted, total=sum(deleted.values()))
    else:
        log.debug(
            "cleanup.done", deleted={}, total=0, scheduled_for=str(scheduled_for) if scheduled_for else None
        )
    return counts


JOBS: tuple[JobSpec, ...] = (job(cleanup, name=JobName.MAINTENANCE_CLEANUP, max_tries=3, timeout_s=3600),)
