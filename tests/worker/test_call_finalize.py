"""``calls.finalize``: after a call, its summary, the caller's lead (created once per phone and linked),
a timeline entry and the ``call.completed`` event — once, however often the job runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.models import Appointment, Calendar, Call, CallTurn, DomainEvent, Lead, LeadActivity
from prosaas_worker import call_summary
from prosaas_worker.jobs import calls
from tests.worker.messaging_support import MakeWorker, make_shop

CALL_SID = "CA" + "3" * 32
CALLER = "+447700900321"


async def a_finished_call(
    engine: AsyncEngine, business_id: int, calendar_id: int | None = None, *, outbound: bool = False
) -> int:
    ours, theirs = "+14155550000", CALLER
    async with engine.begin() as conn:
        call_id = (
            await conn.execute(
                insert(Call)
                .values(
                    business_id=business_id,
                    call_sid=CALL_SID,
                    direction="outbound" if outbound else "inbound",
                    from_number=ours if outbound else theirs,
                    to_number=theirs if outbound else ours,
                    status="completed",
                    duration_s=95,
                )
                .returning(Call.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(CallTurn),
            [
                {
                    "call_id": call_id,
                    "business_id": business_id,
                    "speaker": "agent",
                    "text": "Hello!",
                    "offset_ms": 0,
                },
                {
                    "call_id": call_id,
                    "business_id": business_id,
                    "speaker": "caller",
                    "text": "My tooth hurts",
                    "offset_ms": 1500,
                },
                {
                    "call_id": call_id,
                    "business_id": business_id,
                    "speaker": "caller",
                    "text": "Tomorrow morning?",
                    "offset_ms": 6000,
                },
            ],
        )
        return int(call_id)


async def a_booking_of_the_call(engine: AsyncEngine, business_id: int, starts: datetime) -> None:
    """A 30-minute appointment on the business's default calendar, booked in the call."""
    async with engine.begin() as conn:
        calendar_id = (
            await conn.execute(select(Calendar.id).where(Calendar.business_id == business_id))
        ).scalar_one()
        await conn.execute(
            insert(Appointment).values(
                business_id=business_id,
                calendar_id=calendar_id,
                call_sid=CALL_SID,
                starts_at=starts,
                ends_at=starts + timedelta(minutes=30),
            )
        )


async def test_a_finished_call_gets_its_summary_lead_timeline_and_event_once(
    make_worker: MakeWorker, db_engine: AsyncEngine
) -> None:
    worker = make_worker()
    shop = await make_shop(worker)
    await a_finished_call(db_engine, shop.business_id)
    await a_booking_of_the_call(db_engine, shop.business_id, datetime(2026, 12, 1, 9, 0, tzinfo=UTC))

    assert await calls.finalize(worker.ctx(), CALL_SID) == "finalized"
    assert await calls.finalize(worker.ctx(), CALL_SID) == "skipped"
    assert await calls.finalize(worker.ctx(), "CA" + "0" * 32) == "missing"

    async with db_engine.connect() as conn:
        call = (await conn.execute(select(Call))).one()
        [lead] = (await conn.execute(select(Lead))).all()
        kinds = (await conn.execute(select(LeadActivity.kind).order_by(LeadActivity.id))).scalars().all()
        events = (
            await conn.execute(select(DomainEvent.type, DomainEvent.payload).order_by(DomainEvent.id))
        ).all()
    assert call.summary == (
        "Caller said: My tooth hurts / Tomorrow morning? "
        "Booked an appointment for 2026-12-01T09:00:00+00:00. Duration 95 s."
    )
    assert (call.lead_id, lead.phone, lead.source) == (lead.id, CALLER, "call")
    assert kinds == ["created", "call"]
    assert [event_type for event_type, _ in events] == ["lead.created", "call.completed"]
    completed = events[-1][1]
    assert (completed["call_sid"], completed["lead_id"], completed["duration_s"]) == (CALL_SID, lead.id, 95)
    assert len(completed["appointment_ids"]) == 1


async def test_an_outbound_call_is_on_the_timeline_of_the_lead_it_rang(
    make_worker: MakeWorker, db_engine: AsyncEngine
) -> None:
    worker = make_worker()
    shop = await make_shop(worker)
    await a_finished_call(db_engine, shop.business_id, outbound=True)
    assert await calls.finalize(worker.ctx(), CALL_SID) == "finalized"
    async with db_engine.connect() as conn:
        [lead] = (await conn.execute(select(Lead))).all()
    assert lead.phone == CALLER  # the number rung, not the business's own


def test_a_call_without_words_still_gets_a_summary() -> None:
    assert call_summary.extractive_summary([], [], None) == "No conversation was recorded."
