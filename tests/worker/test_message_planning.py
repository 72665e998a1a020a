"""Planning messages from events: appointment automations (on booking, before the start, after the end)
follow the appointment — rescheduling moves pending sends, cancelling cancels them — and status follow-up
rules schedule their steps when a lead enters the status and cancel the rest when it leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.models import Appointment, FollowupRule, MessageAutomation, OutboundMessage
from prosaas_common.scheduling.booking import Actor, book_appointment, update_appointment
from tests.worker.messaging_support import (
    FakeTwilio,
    MakeWorker,
    Shop,
    Worker,
    make_lead,
    make_shop,
    message_rows,
    move_lead,
)

# Tuesday 1 December 2026, 15:00 in London (GMT) — well in the future, fixed so texts are exact.
START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


async def add_automations(worker: Worker, shop: Shop, *specs: tuple[str, int, str]) -> list[int]:
    async with worker.session_factory.begin() as db:
        rows = [
            MessageAutomation(
                business_id=shop.business_id,
                name=f"{trigger} {offset}",
                trigger=trigger,
                offset_minutes=offset,
                template=template,
            )
            for trigger, offset, template in specs
        ]
        db.add_all(rows)
        await db.flush()
        return [row.id for row in rows]


async def book(worker: Worker, shop: Shop, lead_id: int | None, starts_at: datetime = START) -> int:
    async with worker.session_factory.begin() as db:
        appointment = await book_appointment(
            db,
            shop.business_id,
            None,
            lead_id,
            starts_at,
            timedelta(minutes=30),
            None,
            worker.pool_of,
            title="Check-up",
        )
        return appointment.id


async def change(worker: Worker, appointment_id: int, **changes: Any) -> None:
    async with worker.session_factory.begin() as db:
        appointment = await db.get(Appointment, appointment_id)
        assert appointment is not None
        await update_appointment(db, appointment, changes, Actor(user_id=None, pool=worker.pool_of))


def by_automation(rows: list[OutboundMessage]) -> dict[int | None, list[OutboundMessage]]:
    out: dict[int | None, list[OutboundMessage]] = {}
    for row in rows:
        out.setdefault(row.automation_id, []).append(row)
    return out


async def test_booking_plans_each_automation_with_its_text_and_time(
    make_worker: MakeWorker, db_engine: AsyncEngine
) -> None:
    worker = make_worker()
    shop = await make_shop(worker)
    lead_id = await make_lead(worker, shop)
    booked, before, after = await add_automations(
        worker,
        shop,
        ("booked", 0, "Hi {first_name}, you're booked at {business_name} on {date} at {time}."),
        ("before_start", 24 * 60, "Reminder: {appointment_title} tomorrow at {time}, {full_name}."),
        ("after_end", 120, "Thanks for visiting {business_name}!"),
    )
    appointment_id = await book(worker, shop, lead_id)

    await worker.dispatch_events()
    await worker.dispatch_events()  # nothing new: the events were dispatched once

    rows = by_automation(await message_rows(db_engine, appointment_id=appointment_id))
    assert rows[booked][0].body == "Hi Ada, you're booked at Bright Dental on Tuesday 1 December at 15:00."
    assert rows[booked][0].send_at <= datetime.now(UTC)
    assert rows[before][0].body == "Reminder: Check-up tomorrow at 15:00, Ada Lovelace."
    assert rows[before][0].send_at == START - timedelta(hours=24)
    assert rows[after][0].send_at == START + timedelta(minutes=30 + 120)
    assert {row.to_number for group in rows.values() for row in group} == {"+447700900123"}
    assert all(len(group) == 1 for group in rows.values())
    assert all(group[0].status == "scheduled" and group[0].lead_id == lead_id for group in rows.values())


async def test_rescheduling_moves_pending_sends_and_cancelling_cancels_them(
    twilio: FakeTwilio, make_worker: MakeWorker, db_engine: AsyncEngine
) -> None:
    worker = make_worker(twilio.base_url)
    shop = await make_shop(worker)
    lead_id = await make_lead(worker, shop)
    booked, before = await add_automations(
        worker, shop, ("booked", 0, "Booked for {time}."), ("before_start", 60, "See you at {time}.")
    )
    appointment_id = await book(worker, shop, lead_id)
    await worker.dispatch_events()
    assert await worker.send_due() == 1  # the booking confirmation went out
    [reminder] = by_automation(await message_rows(db_engine, appointment_id=appointment_id))[before]

    later = START + timedelta(days=2, hours=1)
    await change(worker, appointment_id, starts_at=later, ends_at=later + timedelta(minutes=30))
    await worker.dispatch_events()

    rows = by_automation(await message_rows(db_engine, appointment_id=appointment_id))
    [moved] = rows[before]
    assert moved.id == reminder.id  # moved in place, not a second row
    assert (moved.status, moved.send_at, moved.body) == (
        "scheduled",
        later - timedelta(hours=1),
        "See you at 16:00.",
    )
    assert [row.status for row in rows[booked]] == ["sent"]  # a confirmation is not re-sent on reschedule

    await change(worker, appointment_id, status="cancelled")
    await worker.dispatch_events()

    rows = by_automation(await message_rows(db_engine, appointment_id=appointment_id))
    assert [row.status for row in rows[before]] == ["cancelled"]
    assert twilio.bodies() == ["Booked for 15:00."]


async def test_a_reminder_already_sent_for_the_old_time_is_sent_again_for_the_new_time(
    make_worker: MakeWorker, db_engine: AsyncEngine
) -> None:
    worker = make_worker()
    shop = await make_shop(worker)
    lead_id = await make_lead(worker, shop)
    [before] = await add_automations(worker, shop, ("before_start", 60, "See you at {time}."))
    appointment_id = await book(worker, shop, lead_id)
    await worker.dispatch_events()
    async with db_engine.begin() as conn:
        await conn.execute(update(OutboundMessage).values(status="sent"))

    later = START + timedelta(hours=3)
    await change(worker, appointment_id, starts_at=later, ends_at=later + timedelta(minutes=30))
    await worker.dispatch_events()
    # and back to the original time: that reminder was sent already, so nothing new for it
    await change(worker, appointment_id, starts_at=START, ends_at=START + timedelta(minutes=30))
    await worker.dispatch_events()

    rows = await message_rows(db_engine, appointment_id=appointment_id)
    assert [(row.body, row.status) for row in rows] == [
        ("See you at 15:00.", "sent"),
        ("See you at 18:00.", "cancelled"),
    ]
    assert all(row.automation_id == before for row in rows)


async def test_no_phone_or_late_booking_plans_nothing(
    make_worker: MakeWorker, db_engine: AsyncEngine
) -> None:
    worker = make_worker()
    shop = await make_shop(worker)
    no_phone = await make_lead(worker, shop, phone=None, email="ada@example.com")
    with_phone = await make_lead(worker, shop)
    await add_automations(worker, shop, ("before_start", 24 * 60, "Tomorrow!"))
    await book(worker, shop, no_phone)
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    await book(worker, shop, with_phone, starts_at=soon)  # booked too late for a 24 h reminder

    await worker.dispatch_events()

    assert await message_rows(db_engine) == []


async def add_rule(worker: Worker, shop: Shop, status_key: str, steps: list[tuple[int, str]]) -> int:
    async with worker.session_factory.begin() as db:
        rule = FollowupRule(
            business_id=shop.business_id,
            status_id=shop.statuses[status_key],
            name=f"{status_key} follow-up",
            steps=[{"delay_minutes": delay, "template": template} for delay, template in steps],
        )
        db.add(rule)
        await db.flush()
        return rule.id


async def test_entering_a_status_schedules_its_steps_and_leaving_cancels_the_rest(
    make_worker: MakeWorker, db_engine: AsyncEngine
) -> None:
    worker = make_worker()
    shop = await make_shop(worker)
    statuses = sorted(shop.statuses)
    target, other = statuses[-1], statuses[0]
    rule_id = await add_rule(
        worker, shop, target, [(0, "Hi {first_name}, status {status}."), (60, "Step 2"), (1440, "Step 3")]
    )
    lead_id = await make_lead(worker, shop)
    await worker.dispatch_events()
    assert await message_rows(db_engine, lead_id=lead_id) == []  # created in another status

    await move_lead(worker, shop, lead_id, target)
    await worker.dispatch_events()
    rows = await message_rows(db_engine, lead_id=lead_id)
    assert [(row.followup_rule_id, row.followup_step, row.status) for row in rows] == [
        (rule_id, 1, "scheduled"),
        (rule_id, 2, "scheduled"),
        (rule_id, 3, "scheduled"),
    ]
    assert rows[0].body.startswith("Hi Ada, status ")
    assert rows[1].send_at - rows[0].send_at == timedelta(minutes=60)
    async with db_engine.begin() as conn:  # step 1 went out
        await conn.execute(
            update(OutboundMessage).where(OutboundMessage.id == rows[0].id).values(status="sent")
        )

    await move_lead(worker, shop, lead_id, other)
    await worker.dispatch_events()
    assert [row.status for row in await message_rows(db_engine, lead_id=lead_id)] == [
        "sent",
        "cancelled",
        "cancelled",
    ]

    await move_lead(worker, shop, lead_id, target)  # a new entry: a new cycle of all steps
    await worker.dispatch_events()
    rows = await message_rows(db_engine, lead_id=lead_id)
    assert sorted(row.status for row in rows) == [
        "cancelled",
        "cancelled",
        "scheduled",
        "scheduled",
        "scheduled",
        "sent",
    ]
    assert len({row.dedup_key for row in rows}) == 6
