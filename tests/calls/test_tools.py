"""The agent's tools on the real database: free times from the business's calendar, a booking that is a
real appointment of the caller's lead (with the call's sid), the caller's details on one lead per phone,
and every failure as a sentence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from arq.connections import ArqRedis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from prosaas_calls.tools import NOT_FREE, CallTools
from prosaas_common.models import Appointment, Business, DomainEvent, Lead, LeadNote
from prosaas_common.provision import provision_business

CALLER = "+447700900555"
CALL_SID = "CA" + "4" * 32
# Monday 30 November 2026, 08:00 in London: the default calendar opens at 09:00 (60 min notice).
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
async def business_id(db_engine: AsyncEngine) -> int:
    async with async_sessionmaker(db_engine).begin() as db:
        business = Business(name="Bright Dental", timezone="Europe/London", default_region="GB")
        db.add(business)
        await db.flush()
        await provision_business(db, business)
        return business.id


@pytest.fixture
async def tools(db_engine: AsyncEngine, pool: ArqRedis, business_id: int) -> CallTools:
    async def job_pool() -> ArqRedis:
        return pool

    return CallTools(
        async_sessionmaker(db_engine),
        job_pool,
        business_id=business_id,
        call_sid=CALL_SID,
        caller=CALLER,
        clock=lambda: NOW,
    )


async def test_free_times_are_offered_earliest_first_and_spoken_in_local_time(tools: CallTools) -> None:
    result = await tools("check_availability", {})
    assert [slot["start"] for slot in result["slots"]] == [
        "2026-11-30T09:00:00+00:00",
        "2026-11-30T09:30:00+00:00",
        "2026-11-30T10:00:00+00:00",
    ]
    assert result["slots"][0]["spoken"] == "Monday 30 November at 09:00"

    tuesday = await tools("check_availability", {"date": "2026-12-01"})
    assert tuesday["slots"][0]["start"] == "2026-12-01T09:00:00+00:00"
    assert (await tools("check_availability", {"date": "2026-12-05"}))["slots"] == []  # a Saturday
    assert "error" in await tools("check_availability", {"date": "next week-ish"})


async def test_booking_a_free_time_makes_a_real_appointment_of_the_callers_lead(
    tools: CallTools, db_engine: AsyncEngine, business_id: int
) -> None:
    offered = (await tools("check_availability", {}))["slots"][1]["start"]

    result = await tools("book_appointment", {"start": offered, "name": "Ada Lovelace"})

    assert result == {"booked": True, "start": offered, "spoken": "Monday 30 November at 09:30"}
    async with db_engine.connect() as conn:
        appointment = (await conn.execute(select(Appointment))).one()
        lead = (await conn.execute(select(Lead))).one()
        events = (await conn.execute(select(DomainEvent.type).order_by(DomainEvent.id))).scalars().all()
    assert (appointment.call_sid, appointment.lead_id, appointment.starts_at.isoformat()) == (
        CALL_SID,
        lead.id,
        offered,
    )
    assert (lead.phone, lead.first_name, lead.last_name, lead.source) == (CALLER, "Ada", "Lovelace", "call")
    assert events == ["lead.created", "appointment.created"]
    assert tools.booked_appointment_id == appointment.id

    assert await tools("book_appointment", {"start": offered}) == {"error": NOT_FREE}  # taken now
    assert await tools("book_appointment", {"start": "2026-11-30T09:10:00+00:00"}) == {"error": NOT_FREE}
    assert await tools("book_appointment", {"start": "tomorrow at ten"}) == {"error": NOT_FREE}


async def test_the_callers_details_go_on_one_lead_per_phone(tools: CallTools, db_engine: AsyncEngine) -> None:
    await tools("save_lead_info", {"name": "Ada", "reason": "  tooth   ache "})
    result = await tools(
        "save_lead_info", {"name": "Ada Byron", "email": "Ada@Example.com", "notes": "Prefers mornings"}
    )

    assert result["saved"] is True
    async with db_engine.connect() as conn:
        [lead] = (await conn.execute(select(Lead))).all()
        notes = (await conn.execute(select(LeadNote.body))).scalars().all()
    assert (lead.first_name, lead.email, lead.reason) == ("Ada", "ada@example.com", "tooth ache")
    assert notes == ["Prefers mornings"]


async def test_unknown_tools_hidden_numbers_and_end_call(
    db_engine: AsyncEngine, pool: ArqRedis, business_id: int, tools: CallTools
) -> None:
    async def job_pool() -> ArqRedis:
        return pool

    hidden = CallTools(
        async_sessionmaker(db_engine),
        job_pool,
        business_id=business_id,
        call_sid=CALL_SID,
        caller="anonymous",
        clock=lambda: NOW,
    )
    assert "error" in await hidden("save_lead_info", {"name": "X"})
    assert "error" in await tools("transfer_to_mars", {})
    assert not tools.hangup_requested
    assert (await tools("end_call", {}))["ok"] is True
    assert tools.hangup_requested
