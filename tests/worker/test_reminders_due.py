"""``reminders.send_due``: each due pending reminder becomes exactly one notification (and, on the
e-mail channel, one outbox e-mail queued for delivery), however often and however concurrently the job
runs; reminders not yet due, or done, are left alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.connections import ArqRedis
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import Queue
from prosaas_common.models import Business, Lead, LeadStatus, Notification, OutboundEmail, Reminder, User
from prosaas_common.settings import build_settings
from prosaas_worker.context import WorkerResources
from prosaas_worker.jobs import reminders
from prosaas_worker.jobs.email import deliver_email
from prosaas_worker.settings import WorkerConfig
from tests.worker.conftest import LogCapture
from tests.worker.smtp_server import smtp_server

SendDue = Callable[[], Awaitable[int]]
PAST = datetime.now(UTC) - timedelta(minutes=5)


@pytest.fixture
async def send_due(database_url: str, redis_url: str, pool: ArqRedis) -> AsyncIterator[SendDue]:
    resources = WorkerResources.create(
        build_settings(WorkerConfig, app_env="test", database_url=database_url, redis_url=redis_url)
    )

    async def run() -> int:
        ctx = resources.job_context(Queue.DEFAULT)
        ctx.update(job_id="cron:reminders-due", job_try=1, redis=pool)
        return await reminders.send_due(ctx, scheduled_for="2026-11-23T12:00:00+00:00")

    yield run
    await resources.dispose()


async def staff(engine: AsyncEngine, **business: Any) -> tuple[int, int]:
    """A business and one active user of it: (business_id, user_id)."""
    async with engine.begin() as conn:
        business_id = (
            await conn.execute(insert(Business).values(name="Dental", **business).returning(Business.id))
        ).scalar_one()
        user_id = (
            await conn.execute(
                insert(User)
                .values(business_id=business_id, email="agent@dental.example", role="agent")
                .returning(User.id)
            )
        ).scalar_one()
    return business_id, user_id


async def add_reminders(engine: AsyncEngine, rows: list[dict[str, Any]]) -> list[int]:
    async with engine.begin() as conn:
        result = await conn.execute(insert(Reminder).values(rows).returning(Reminder.id))
        return sorted(result.scalars())


async def test_due_reminders_are_sent_once(
    send_due: SendDue, db_engine: AsyncEngine, pool: ArqRedis, info_logs: LogCapture
) -> None:
    business_id, user_id = await staff(db_engine)
    common = {
        "business_id": business_id,
        "assignee_user_id": user_id,
        "channel": "in_app",
        "status": "pending",
    }
    in_app, by_email, later, done = await add_reminders(
        db_engine,
        [
            {**common, "note": "Call Ada back", "due_at": PAST},
            {**common, "note": "Send the quote\nwith prices", "due_at": PAST, "channel": "email"},
            {**common, "note": "Not yet", "due_at": datetime.now(UTC) + timedelta(hours=1)},
            {**common, "note": "Done already", "due_at": PAST, "status": "done"},
        ],
    )

    assert await send_due() == 2
    assert await send_due() == 0

    async with db_engine.connect() as conn:
        notes = (await conn.execute(select(Notification).order_by(Notification.reminder_id))).all()
        statuses = dict((await conn.execute(select(Reminder.id, Reminder.status))).all())
        emails = (await conn.execute(select(OutboundEmail))).all()
    assert [(n.reminder_id, n.user_id, n.kind, n.title, n.read_at) for n in notes] == [
        (in_app, user_id, "reminder", "Reminder: Call Ada back", None),
        (by_email, user_id, "reminder", "Reminder: Send the quote", None),
    ]
    assert statuses == {in_app: "sent", by_email: "sent", later: "pending", done: "done"}
    [email] = emails
    assert (email.to_address, email.status) == ("agent@dental.example", "pending")
    assert email.dedup_key.startswith(f"reminder:{by_email}:")
    assert (email.subject, email.from_name) == ("Reminder: Send the quote", "Dental")
    assert email.body_text.startswith("Send the quote\nwith prices\n\nDue ")
    assert f"Due {PAST:%Y-%m-%d %H:%M} (UTC)." in email.body_text
    assert "Send the quote<br>\nwith prices" in email.body_html
    assert await pool.zrange(Queue.DEFAULT.value, 0, -1) == [f"email:{email.id}".encode()]

    [sent] = info_logs.events("reminders.sent")
    assert (sent["level"], sent["count"]) == ("info", 2)


async def test_two_workers_at_once_never_send_a_reminder_twice(
    send_due: SendDue, db_engine: AsyncEngine
) -> None:
    business_id, user_id = await staff(db_engine)
    total = reminders.BATCH * 2 + 50  # several batches each
    rows = [
        {"business_id": business_id, "assignee_user_id": user_id, "note": f"n{i}", "due_at": PAST}
        for i in range(total)
    ]
    await add_reminders(db_engine, rows)

    counts = await asyncio.gather(send_due(), send_due(), send_due())
    assert sum(counts) == total
    assert await send_due() == 0

    async with db_engine.connect() as conn:
        made = await conn.scalar(select(func.count()).select_from(Notification))
        distinct = await conn.scalar(select(func.count(func.distinct(Notification.reminder_id))))
        pending = await conn.scalar(select(func.count()).where(Reminder.status != "sent"))
    assert (made, distinct, pending) == (total, total, 0)


async def test_a_reminder_email_arrives_with_text_and_escaped_html_in_the_business_time_zone(
    send_due: SendDue, db_engine: AsyncEngine, database_url: str, redis_url: str
) -> None:
    business_id, user_id = await staff(db_engine, timezone="Europe/Berlin")
    async with db_engine.begin() as conn:
        status_id = (
            await conn.execute(
                insert(LeadStatus)
                .values(business_id=business_id, key="new", name="New", position=0)
                .returning(LeadStatus.id)
            )
        ).scalar_one()
        lead_id = (
            await conn.execute(
                insert(Lead)
                .values(business_id=business_id, status_id=status_id, rank=1.0, phone="+14155550100")
                .returning(Lead.id)
            )
        ).scalar_one()
    due = datetime(2025, 7, 1, 10, 30, tzinfo=UTC)  # 12:30 in Berlin (summer time)
    note = "Call <script>alert(1)</script> back"
    await add_reminders(
        db_engine,
        [
            {
                "business_id": business_id,
                "assignee_user_id": user_id,
                "lead_id": lead_id,
                "note": note,
                "due_at": due,
                "channel": "email",
            }
        ],
    )
    assert await send_due() == 1
    async with db_engine.connect() as conn:
        email_id = await conn.scalar(select(OutboundEmail.id))
    assert email_id is not None

    with smtp_server() as smtp:
        config = build_settings(
            WorkerConfig, app_env="test", database_url=database_url, redis_url=redis_url, smtp_url=smtp.url
        )
        resources = WorkerResources.create(config)
        try:
            ctx = resources.job_context(Queue.DEFAULT)
            ctx.update(job_id=f"email:{email_id}", job_try=1)
            assert await deliver_email(ctx, email_id) == "sent"
        finally:
            await resources.dispose()
        [received] = smtp.handler.messages()
    message = received.message
    assert received.rcpt_tos == ["agent@dental.example"]
    assert message["Subject"] == f"Reminder: {note}"
    assert message["From"].addresses[0].display_name == "Dental"
    assert message.get_content_type() == "multipart/alternative"
    text, html = (part.get_content().replace("\r\n", "\n") for part in message.iter_parts())
    assert f"{note}\n\nDue 2025-07-01 12:30 (Europe/Berlin).\n\nLead: /leads/{lead_id}\n" in text
    assert "Call &lt;script&gt;alert(1)&lt;/script&gt; back" in html
    assert "Due 2025-07-01 12:30 (Europe/Berlin)." in html
    assert "<script" not in html
