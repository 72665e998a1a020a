"""Due reminders: ``reminders.send_due`` (every 30 s from the scheduler) turns each pending reminder whose
time has come into an in-app notification for its assignee and, on the e-mail channel, an outbox e-mail
(the ``reminder`` template, due time in the business's time zone, From the business's sender name).

Reminders are claimed with ``FOR UPDATE SKIP LOCKED`` in batches, so two workers never take the same
one; the notification's unique ``reminder_id`` and the e-mail's ``dedup_key`` make a repeated run a
no-op even if a claim were ever lost. E-mails are enqueued for delivery only after the batch commits.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.db import unit_of_work
from prosaas_common.email_templates import add_templated_email
from prosaas_common.jobs import JobName
from prosaas_common.logging import get_logger
from prosaas_common.models import Business, Notification, Reminder, ReminderChannel, ReminderStatus, User
from prosaas_worker.context import JobContext, get_resources
from prosaas_worker.jobs.email import enqueue_delivery
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


def due_text(due_at: datetime, timezone: str) -> str:
    """The due time as the business reads it: ``2026-11-23 14:00 (Europe/Berlin)``."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone, timezone = ZoneInfo("UTC"), "UTC"
    return f"{due_at.astimezone(zone):%Y-%m-%d %H:%M} ({timezone})"


async def send_one(
    db: AsyncSession, ctx: JobContext, reminder: Reminder, assignee: User | None, timezone: str = "UTC"
) -> None:
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
        email_id = await add_templated_email(
            db,
            business_id=reminder.business_id,
            to_address=assignee.email,
            dedup_key=email_dedup_key(reminder),
            template="reminder",
            context={
                "title": title,
                "note": reminder.note,
                "due": due_text(reminder.due_at, timezone),
                "link": link,
            },
        )
        if email_id is not None:
            enqueue_delivery(db, ctx, email_id)
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
        business_ids = {reminder.business_id for reminder in claimed}
        zone_rows = await db.execute(
            select(Business.id, Business.timezone).where(Business.id.in_(business_ids))
        )
        zones = {business_id: timezone for business_id, timezone in zone_rows}
        for reminder in claimed:
            zone = zones.get(reminder.business_id, "UTC")
            await send_one(db, ctx, reminder, users.get(reminder.assignee_user_id), zone)
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
