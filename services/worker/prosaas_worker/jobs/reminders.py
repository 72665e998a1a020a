"""Due reminders: ``reminders.send_due`` (every 30 s from the scheduler) turns each pending reminder whose
time has come into an in-app notification for its assignee and, on the e-mail channel, an outbox e-mail.

Reminders are claimed with ``FOR UPDATE SKIP LOCKED`` in batches, so two workers never take the same
one; the notification's unique ``reminder_id`` and the e-mail's ``dedup_key`` make a repeated run a
no-op even if a claim were ever lost. E-mails are enqueued for delivery only after the batch commits.
"""

from __future__ import annotations

from datetime import datetime

from arq.connections import ArqRedis
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.db import unit_of_work
from prosaas_common.jobs import JobName, Queue, enqueue_after_commit
from prosaas_common.logging import get_logger
from prosaas_common.models import Notification, OutboundEmail, Reminder, ReminderChannel, ReminderStatus, User
from prosaas_worker.context import JobContext, get_resources
from prosaas_worker.jobs.email import JOB_NAME as EMAIL_JOB
from prosaas_worker.jobs.email import email_job_id
from prosaas_worker.registry import JobSpec, job

BATCH = 200
# Batches per run at most; what is left waits for the next run (30 s later), keeping one run short.
MAX_BATCHES = 25

log = get_logger("prosaas.worker.reminders")


def reminder_title(note: str) -> str:
    first_line = note.strip().splitlines()[0] if note.strip() else "Reminder"
    return f"Reminder: {first_line}"[:200]


def email_dedup_key(reminder: Reminder) -> str:
    """One e-mail per reminder and due time: a snoozed reminder that falls due again e-mails again."""
    return f"reminder:{reminder.id}:{int(reminder.due_at.timestamp())}"


def email_body(reminder: Reminder, link: str | None) -> str:
    where = f"\n\nLead: {link}" if link else ""
    return f"{reminder.note}\n\nDue {reminder.due_at.isoformat()}.{where}\n"


async def send_one(db: AsyncSession, ctx: JobContext, reminder: Reminder, assignee: User | None) -> None:
    link = f"/leads/{reminder.lead_id}" if reminder.lead_id is not None else None
    title = reminder_title(reminder.note)
    await db.execute(
        insert(Notification)
        .values(
            business_id=reminder.business_id,
            user_id=reminder.assignee_user_id,
            kind="reminder",
            title=title,
            body=reminder.note,
            link=link,
            reminder_id=reminder.id,
        )
        .on_conflict_do_nothing(index_elements=[Notification.reminder_id])
    )
    if reminder.channel == ReminderChannel.EMAIL and assignee is not None and assignee.is_active:
        email_id = await db.scalar(
            insert(OutboundEmail)
            .values(
                business_id=reminder.business_id,
                dedup_key=email_dedup_key(reminder),
                to_address=assignee.email,
                subject=title[:300],
                body_text=email_body(reminder, link),
            )
            .on_conflict_do_nothing(index_elements=[OutboundEmail.dedup_key])
            .returning(OutboundEmail.id)
        )
        if email_id is not None:

            async def pool() -> ArqRedis:
                redis: ArqRedis = ctx["redis"]
                return redis

            enqueue_after_commit(
                db, pool, EMAIL_JOB, email_id, queue=Queue.DEFAULT, job_id=email_job_id(email_id)
            )
    reminder.status = ReminderStatus.SENT.value
    reminder.sent_at = func.now()


async def send_batch(ctx: JobContext) -> int:
    """Claim and send one batch in one transaction; how many were sent."""
    async with unit_of_work(get_resources(ctx).session_factory) as db:
        claimed = list(
            await db.scalars(
                select(Reminder)
                .where(Reminder.status == ReminderStatus.PENDING.value, Reminder.due_at <= func.now())
                .order_by(Reminder.due_at, Reminder.id)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        if not claimed:
            return 0
        user_ids = {reminder.assignee_user_id for reminder in claimed}
        users = {user.id: user for user in await db.scalars(select(User).where(User.id.in_(user_ids)))}
        for reminder in claimed:
            await send_one(db, ctx, reminder, users.get(reminder.assignee_user_id))
        return len(claimed)


async def send_due(ctx: JobContext, scheduled_for: str | datetime | None = None) -> int:
    """Send every reminder due by now (up to ``MAX_BATCHES`` batches); returns how many were sent."""
    sent = 0
    for _ in range(MAX_BATCHES):
        count = await send_batch(ctx)
        sent += count
        if count < BATCH:
            break
    if sent:
        log.info("reminders.sent", count=sent)
    else:
        log.debug("reminders.sent", count=0, scheduled_for=str(scheduled_for) if scheduled_for else None)
    return sent


JOBS: tuple[JobSpec, ...] = (job(send_due, name=JobName.REMINDERS_SEND_DUE, max_tries=1, timeout_s=120),)
