"""Outbound calls in the worker: a call is created at Twilio once however often its job runs (a lost
answer is found again, not re-placed); a bulk run never has more than ``max_outbound_calls`` live, waits
for slots in follow-up jobs instead of sleeping, finishes once earlier calls ended, skips leads without a
phone or tagged do-not-call, counts refusals, and stops when asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from arq import Retry
from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.models import BusinessSettings, Call, OutboundCallRun
from prosaas_common.outbound_calls import manual_dedup_key, placeholder_sid, run_job_id
from prosaas_common.outbound_slots import OutboundSlots
from prosaas_worker.jobs import outbound_calls
from tests.fakes.twilio_outbound import FakeCalls, build_app
from tests.support import serving
from tests.worker.messaging_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SENDING_NUMBER,
    MakeWorker,
    Shop,
    Worker,
    make_lead,
    make_shop,
)


@pytest.fixture
async def fake_calls() -> AsyncIterator[tuple[FakeCalls, str]]:
    state = FakeCalls(ACCOUNT_SID, AUTH_TOKEN)
    async with serving(build_app(state)) as base_url:
        yield state, base_url


async def queued_call(engine: AsyncEngine, shop: Shop, lead_id: int, phone: str) -> int:
    async with engine.begin() as conn:
        return int(
            (
                await conn.execute(
                    Call.__table__.insert()  # type: ignore[attr-defined]
                    .values(
                        business_id=shop.business_id,
                        call_sid=placeholder_sid(),
                        direction="outbound",
                        from_number=SENDING_NUMBER,
                        to_number=phone,
                        lead_id=lead_id,
                        status="queued",
                        dedup_key=manual_dedup_key(shop.business_id, f"k{lead_id}"),
                    )
                    .returning(Call.id)
                )
            ).scalar_one()
        )


async def a_call(engine: AsyncEngine, call_id: int) -> Call:
    async with engine.connect() as conn:
        row = (await conn.execute(select(Call).where(Call.id == call_id))).one()
        return row  # type: ignore[return-value]


async def set_limit(engine: AsyncEngine, shop: Shop, limit: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(BusinessSettings)
            .where(BusinessSettings.business_id == shop.business_id)
            .values(max_outbound_calls=limit)
        )


async def test_a_single_call_is_created_at_twilio_once(
    make_worker: MakeWorker, db_engine: AsyncEngine, fake_calls: tuple[FakeCalls, str]
) -> None:
    state, url = fake_calls
    worker = make_worker(url, public_host="calls.example.com")
    shop = await make_shop(worker)
    lead_id = await make_lead(worker, shop, phone="+447700900123")
    call_id = await queued_call(db_engine, shop, lead_id, "+447700900123")

    assert await outbound_calls.place_outbound(worker.ctx(), call_id) == "placed"
    assert await outbound_calls.place_outbound(worker.ctx(), call_id) == "already"

    [placed] = state.calls
    assert (placed["to"], placed["from"]) == ("+447700900123", SENDING_NUMBER)
    parts = urlsplit(placed["url"])
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "calls.example.com",
        "/webhook/outbound_call",
    )
    assert parse_qs(parts.query) == {"call_id": [str(call_id)]}
    assert placed["status_callback"] == "https://calls.example.com/webhook/call_status"
    assert placed["status_callback_event"] == ["initiated", "ringing", "answered", "completed"]
    row = await a_call(db_engine, call_id)
    assert (row.call_sid, row.status, row.dialed_at is not None) == (placed["sid"], "queued", True)
    assert await OutboundSlots(worker.resources.redis).live(shop.business_id) == 1


async def test_a_lost_answer_is_found_at_twilio_instead_of_calling_again(
    make_worker: MakeWorker, db_engine: AsyncEngine, fake_calls: tuple[FakeCalls, str]
) -> None:
    state, url = fake_calls
    worker = make_worker(url)
    shop = await make_shop(worker)
    lead_id = await make_lead(worker, shop, phone="+447700900124")
    call_id = await queued_call(db_engine, shop, lead_id, "+447700900124")
    state.drop_answer_next = 1  # Twilio creates the call, the answer never arrives

    with pytest.raises(Retry):
        await outbound_calls.place_outbound(worker.ctx(), call_id)
    with pytest.raises(Retry):  # the claim is still in flight: nobody places it meanwhile
        await outbound_calls.place_outbound(worker.ctx(), call_id)
    assert len(state.calls) == 1
    async with db_engine.begin() as conn:  # the in-flight window passed
        await conn.execute(
            update(Call).where(Call.id == call_id).values(dialed_at=Call.dialed_at - timedelta(minutes=5))
        )

    assert await outbound_calls.place_outbound(worker.ctx(), call_id) == "placed"
    assert len(state.calls) == 1
    assert (await a_call(db_engine, call_id)).call_sid == state.calls[0]["sid"]


async def a_run(engine: AsyncEngine, shop: Shop, lead_ids: list[int]) -> int:
    async with engine.begin() as conn:
        return int(
            (
                await conn.execute(
                    OutboundCallRun.__table__.insert()  # type: ignore[attr-defined]
                    .values(
                        business_id=shop.business_id, selection={"lead_ids": lead_ids}, total=len(lead_ids)
                    )
                    .returning(OutboundCallRun.id)
                )
            ).scalar_one()
        )


async def run_of(engine: AsyncEngine, run_id: int) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(OutboundCallRun).where(OutboundCallRun.id == run_id))).one()


async def end_live_calls(worker: Worker, engine: AsyncEngine, shop: Shop) -> int:
    """What the calls service does on each terminal status: the row completes, the slot is given back."""
    slots = OutboundSlots(worker.resources.redis)
    async with engine.begin() as conn:
        ids = list(
            (
                await conn.execute(
                    update(Call)
                    .where(
                        Call.business_id == shop.business_id,
                        Call.status == "queued",
                        ~Call.call_sid.startswith("pending:"),
                    )
                    .values(status="completed")
                    .returning(Call.id)
                )
            ).scalars()
        )
    for call_id in ids:
        await slots.release(shop.business_id, call_id)
    return len(ids)


async def test_a_bulk_run_keeps_to_the_limit_and_finishes_every_lead(
    make_worker: MakeWorker,
    db_engine: AsyncEngine,
    fake_calls: tuple[FakeCalls, str],
    pool: ArqRedis,
    redis: Redis,
) -> None:
    state, url = fake_calls
    worker = make_worker(url)
    shop = await make_shop(worker)
    await set_limit(db_engine, shop, 3)
    leads = [await make_lead(worker, shop, phone=f"+44770090020{i}") for i in range(7)]
    run_id = await a_run(db_engine, shop, leads)
    slots = OutboundSlots(worker.resources.redis)

    seq, placed_per_step = 0, []
    for _ in range(10):
        before = len(state.calls)
        result = await outbound_calls.run_outbound(worker.ctx(), run_id, seq)
        placed_per_step.append(len(state.calls) - before)
        assert await slots.live(shop.business_id) <= 3
        if result == "completed":
            break
        assert result == "waiting"
        seq += 1
        assert await redis.exists(job_key_prefix + run_job_id(run_id, seq))  # the next step is queued
        assert (await run_of(db_engine, run_id)).wakeups == seq
        # Nothing ends: the next step places nothing.
        assert await outbound_calls.run_outbound(worker.ctx(), run_id, seq) == "waiting"
        seq += 1
        await end_live_calls(worker, db_engine, shop)

    assert placed_per_step[:3] == [3, 3, 1]
    assert sorted(c["to"] for c in state.calls) == [f"+44770090020{i}" for i in range(7)]
    run = await run_of(db_engine, run_id)
    assert (run.status, run.placed, run.failed, run.skipped, run.cursor) == ("completed", 7, 0, 0, 7)
    assert run.finished_at is not None
    # Repeating a finished run's step is harmless.
    assert await outbound_calls.run_outbound(worker.ctx(), run_id, seq) == "completed"
    assert len(state.calls) == 7


async def test_skipped_and_refused_leads_are_counted(
    make_worker: MakeWorker, db_engine: AsyncEngine, fake_calls: tuple[FakeCalls, str]
) -> None:
    state, url = fake_calls
    worker = make_worker(url)
    shop = await make_shop(worker)
    ok = await make_lead(worker, shop, phone="+447700900301")
    no_phone = await make_lead(worker, shop, phone=None, email="np@example.com")
    opted_out = await make_lead(worker, shop, phone="+447700900302", tags=["do-not-call"])
    refused = await make_lead(worker, shop, phone="+447700900303")
    state.refuse = {"+447700900303"}
    run_id = await a_run(db_engine, shop, [ok, no_phone, opted_out, refused, ok, 999_999])

    assert await outbound_calls.run_outbound(worker.ctx(), run_id) == "completed"

    run = await run_of(db_engine, run_id)
    # The repeated id and the id of no lead are skipped too.
    assert (run.placed, run.failed, run.skipped) == (1, 1, 4)
    assert [c["to"] for c in state.calls] == ["+447700900301"]
    async with db_engine.connect() as conn:
        rows = (
            await conn.execute(
                select(Call.to_number, Call.status, Call.end_reason)
                .where(Call.run_id == run_id)
                .order_by(Call.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("+447700900301", "queued", None),
        ("+447700900303", "failed", "dial_refused"),
    ]
    assert (
        await OutboundSlots(worker.resources.redis).live(shop.business_id) == 1
    )  # the refused one gave its slot back


async def test_stopping_a_run_halts_it(
    make_worker: MakeWorker, db_engine: AsyncEngine, fake_calls: tuple[FakeCalls, str]
) -> None:
    state, url = fake_calls
    worker = make_worker(url)
    shop = await make_shop(worker)
    await set_limit(db_engine, shop, 2)
    leads = [await make_lead(worker, shop, phone=f"+44770090040{i}") for i in range(5)]
    run_id = await a_run(db_engine, shop, leads)
    assert await outbound_calls.run_outbound(worker.ctx(), run_id) == "waiting"
    async with db_engine.begin() as conn:  # what POST /api/calls/outbound/runs/{id}/stop does
        await conn.execute(
            update(OutboundCallRun).where(OutboundCallRun.id == run_id).values(status="stopping")
        )
    await end_live_calls(worker, db_engine, shop)

    assert await outbound_calls.run_outbound(worker.ctx(), run_id, 1) == "stopped"
    assert await outbound_calls.run_outbound(worker.ctx(), run_id, 2) == "stopped"

    assert len(state.calls) == 2
    run = await run_of(db_engine, run_id)
    assert (run.status, run.placed, run.cursor) == ("stopped", 2, 2)
    assert run.finished_at is not None
