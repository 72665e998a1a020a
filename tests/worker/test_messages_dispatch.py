"""``messages.send_due`` against a local Twilio Messaging API: every due message is handed over exactly
once — also with two dispatchers at once, after transient failures and after a worker died mid-request —
refusals fail for good, and messages whose reason went away are cancelled instead of sent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.models import Appointment, MessageAutomation, MessageStatus, OutboundMessage
from prosaas_common.scheduling.booking import book_appointment
from tests.worker.conftest import LogCapture
from tests.worker.messaging_support import (
    SENDING_NUMBER,
    FakeTwilio,
    MakeWorker,
    add_messages,
    make_lead,
    make_shop,
    message_rows,
    statuses,
)

PAST = datetime.now(UTC) - timedelta(minutes=1)
FUTURE = datetime.now(UTC) + timedelta(hours=2)


async def test_due_messages_are_sent_once_and_recorded(
    twilio: FakeTwilio, make_worker: MakeWorker, db_engine: AsyncEngine, info_logs: LogCapture
) -> None:
    worker = make_worker(twilio.base_url)
    shop = await make_shop(worker)
    due = await add_messages(db_engine, shop, 5, PAST)
    [later] = await add_messages(db_engine, shop, 1, FUTURE, dedup_key="later", body="not yet")

    assert await worker.send_due() == 5
    assert await worker.send_due() == 0

    assert sorted(twilio.bodies()) == [f"msg {i}" for i in range(5)]
    assert {m["from"] for m in twilio.state.messages} == {SENDING_NUMBER}
    rows = {row.id: row for row in await message_rows(db_engine)}
    for message_id in due:
        row = rows[message_id]
        assert (row.status, row.attempts, row.provider_status) == ("sent", 1, "queued")
        assert row.provider_sid is not None
        assert row.provider_sid.startswith("SM")
        assert row.sent_at is not None
    assert rows[later].status == "scheduled"
    callbacks = {m["status_callback"] for m in twilio.state.messages}
    assert callbacks == {f"https://localhost/webhook/sms_status?message_id={i}" for i in due}
    assert [r["sent"] for r in info_logs.events("messages.sent")] == [5]  # the idle second run logs nothing


async def test_two_dispatchers_at_once_send_each_message_once(
    twilio: FakeTwilio, make_worker: MakeWorker, db_engine: AsyncEngine
) -> None:
    twilio.state.delay_ms = 2
    one, two = (
        make_worker(twilio.base_url, messages_batch_size=50),
        make_worker(twilio.base_url, messages_batch_size=50),
    )
    shop = await make_shop(one)
    await add_messages(db_engine, shop, 600, PAST)

    sent = await asyncio.gather(one.send_due(), two.send_due(), one.send_due())

    assert sum(sent) == 600
    bodies = twilio.bodies()
    assert len(bodies) == 600
    assert len(set(bodies)) == 600
    assert set(statuses(await message_rows(db_engine))) == {"sent"}


async def test_transient_failures_are_retried_later_and_refusals_fail(
    twilio: FakeTwilio, make_worker: MakeWorker, db_engine: AsyncEngine
) -> None:
    worker = make_worker(twilio.base_url)
    shop = await make_shop(worker)
    ok, flaky = await add_messages(db_engine, shop, 2, PAST)
    [refused] = await add_messages(
        db_engine, shop, 1, PAST, dedup_key="refused", to_number="+15005550001", body="to a bad number"
    )
    twilio.state.refuse = {"+15005550001"}
    twilio.state.fail_next = 1  # the first create answers 503

    await worker.send_due()
    rows = {row.id: row for row in await message_rows(db_engine)}
    failed_once = [row for row in (rows[ok], rows[flaky]) if row.status == "scheduled"]
    assert len(failed_once) == 1
    retry = failed_once[0]
    assert retry.attempts == 1
    assert retry.last_error is not None
    assert "HTTP 503" in retry.last_error
    assert retry.send_at > datetime.now(UTC) + timedelta(seconds=10)  # backed off, not hammered
    assert (rows[refused].status, rows[refused].attempts) == ("failed", 1)
    assert "code 21211" in (rows[refused].last_error or "")

    async with db_engine.begin() as conn:  # time passes
        await conn.execute(update(OutboundMessage).where(OutboundMessage.id == retry.id).values(send_at=PAST))
    assert await worker.send_due() == 1
    rows = {row.id: row for row in await message_rows(db_engine)}
    assert (rows[retry.id].status, rows[retry.id].attempts) == ("sent", 2)
    assert rows[refused].status == "failed"  # never retried
    assert sorted(twilio.bodies()) == ["msg 0", "msg 1"]


async def test_the_last_attempt_fails_the_message(
    twilio: FakeTwilio, make_worker: MakeWorker, db_engine: AsyncEngine
) -> None:
    worker = make_worker(twilio.base_url, messages_max_attempts=2)
    shop = await make_shop(worker)
    [message_id] = await add_messages(db_engine, shop, 1, PAST, attempts=1)
    twilio.state.fail_next = 5

    await worker.send_due()

    [row] = await message_rows(db_engine)
    assert (row.id, row.status, row.attempts) == (message_id, "failed", 2)


async def test_in_doubt_sends_are_checked_with_the_provider_before_sending_again(
    twilio: FakeTwilio, make_worker: MakeWorker, db_engine: AsyncEngine
) -> None:
    """A worker died after claiming two messages; the provider got one of them. The survivor asks the
    provider about both: the one it has is marked sent (not sent twice), the other is sent now."""
    worker = make_worker(twilio.base_url, messages_in_doubt_after_s=60)
    shop = await make_shop(worker)
    got, lost = await add_messages(db_engine, shop, 2, PAST)
    claimed_at = datetime.now(UTC) - timedelta(minutes=5)
    async with db_engine.begin() as conn:
        await conn.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id.in_([got, lost]))
            .values(status="sending", claimed_at=claimed_at, attempts=1)
        )
    [got_row, _] = await message_rows(db_engine)
    twilio.state.messages.append(  # what the provider recorded before the worker died
        {
            "sid": "SM" + "f" * 32,
            "to": got_row.to_number,
            "from": SENDING_NUMBER,
            "body": got_row.body,
            "status": "delivered",
            "date_created": format_datetime(claimed_at + timedelta(seconds=1)),
            "_created": claimed_at + timedelta(seconds=1),
        }
    )
    recent_row_left_alone = (
        await add_messages(db_engine, shop, 1, PAST, dedup_key="fresh", status="sending")
    )[0]
    async with db_engine.begin() as conn:
        await conn.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id == recent_row_left_alone)
            .values(claimed_at=datetime.now(UTC))
        )

    assert await worker.send_due() == 1

    rows = {row.id: row for row in await message_rows(db_engine)}
    assert (rows[got].status, rows[got].provider_sid) == ("sent", "SM" + "f" * 32)
    assert rows[lost].status == "sent"
    assert rows[lost].attempts == 2
    assert rows[recent_row_left_alone].status == "sending"  # its worker may still be waiting for the answer
    assert sorted(twilio.bodies()) == ["msg 0", "msg 1"]  # msg 0 once (before the crash), msg 1 now


async def test_cancelled_appointment_messages_are_not_sent(
    twilio: FakeTwilio, make_worker: MakeWorker, db_engine: AsyncEngine
) -> None:
    """The event that cancels pending sends may still be queued when they fall due: the claim checks."""
    worker = make_worker(twilio.base_url)
    shop = await make_shop(worker)
    lead_id = await make_lead(worker, shop)
    async with worker.session_factory.begin() as db:
        appointment = await book_appointment(
            db, shop.business_id, None, lead_id, FUTURE, timedelta(minutes=30), None, worker.pool_of
        )
        automation = MessageAutomation(
            business_id=shop.business_id,
            name="Reminder",
            trigger="before_start",
            offset_minutes=60,
            template="Hi",
        )
        db.add(automation)
        await db.flush()
        appointment_id, automation_id = appointment.id, automation.id
    planned = {"appointment_id": appointment_id, "automation_id": automation_id, "dedup_key": "auto"}
    await add_messages(db_engine, shop, 1, PAST, **planned)
    await add_messages(db_engine, shop, 1, PAST, dedup_key="one-off", body="one-off", lead_id=lead_id)
    async with db_engine.begin() as conn:
        await conn.execute(
            update(Appointment).where(Appointment.id == appointment_id).values(status="cancelled")
        )

    assert await worker.send_due() == 1  # the one-off message to the lead still goes

    rows = {row.dedup_key: row for row in await message_rows(db_engine)}
    assert rows["auto"].status == MessageStatus.CANCELLED.value
    assert rows["one-off"].status == "sent"
    assert twilio.bodies() == ["one-off"]


async def test_without_a_twilio_account_messages_wait(
    make_worker: MakeWorker, db_engine: AsyncEngine, info_logs: LogCapture
) -> None:
    worker = make_worker(None)
    shop = await make_shop(worker)
    await add_messages(db_engine, shop, 2, PAST)

    assert await worker.send_due() == 0
    assert await worker.send_due() == 0

    assert statuses(await message_rows(db_engine)) == ["scheduled", "scheduled"]
    assert len(info_logs.events("messages.not_configured")) == 1  # a WARNING once, not every tick


async def test_a_business_without_a_number_fails_its_messages_with_the_reason(
    twilio: FakeTwilio, make_worker: MakeWorker, db_engine: AsyncEngine
) -> None:
    worker = make_worker(twilio.base_url)
    shop = await make_shop(worker, number=False)
    await add_messages(db_engine, shop, 1, PAST, from_number=None)

    await worker.send_due()

    [row] = await message_rows(db_engine)
    assert row.status == "failed"
    assert row.last_error is not None
    assert "no phone number" in row.last_error
    assert twilio.bodies() == []


async def test_an_unresolvable_provider_defers_the_batch_on_the_dns_policy(
    make_worker: MakeWorker, db_engine: AsyncEngine, info_logs: LogCapture
) -> None:
    worker = make_worker("http://api.twilio.invalid")
    shop = await make_shop(worker)
    await add_messages(db_engine, shop, 3, PAST)

    assert await worker.send_due() == 0

    rows = await message_rows(db_engine)
    assert statuses(rows) == ["scheduled"] * 3  # nothing lost, nothing failed
    assert all(row.send_at > datetime.now(UTC) + timedelta(seconds=10) for row in rows)  # deferred, not slept
    assert all(row.last_error and row.last_error.startswith("ConnectError") for row in rows)
    assert len(info_logs.events("dns.resolution_failed")) == 1  # one WARNING for the batch
