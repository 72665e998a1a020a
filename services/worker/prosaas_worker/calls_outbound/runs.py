"""One step of a bulk run (``calls.run_outbound``): what to do next, decided under the run's row lock.

The run's leads are walked in order from ``cursor``; the cursor moves in the transaction that handles
the lead (skips it, or writes its ``calls`` row with the dedup key ``run:{run}:lead:{lead}``), so a step
repeated after a crash never handles a lead twice. A row written but not placed yet (no free slot, a
transient failure, a crash) is placed before the cursor moves on.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.messaging.planner import sending_number
from prosaas_common.models import Call, CallDirection, CallStatus, Lead, OutboundCallRun, RunStatus
from prosaas_common.outbound_calls import (
    DO_NOT_CALL_TAG,
    PENDING_PREFIX,
    outbound_limit,
    placeholder_sid,
    run_dedup_key,
)
from prosaas_common.outbound_slots import OutboundSlots


@dataclass(frozen=True)
class Finished:
    status: str


@dataclass(frozen=True)
class Wait:
    """No free outbound slot: try again later."""


@dataclass(frozen=True)
class Skipped:
    lead_id: int


@dataclass(frozen=True)
class Dial:
    call_id: int


Step = Finished | Wait | Skipped | Dial


async def locked_run(db: AsyncSession, run_id: int) -> OutboundCallRun | None:
    return await db.scalar(select(OutboundCallRun).where(OutboundCallRun.id == run_id).with_for_update())


async def stop(db: AsyncSession, run: OutboundCallRun) -> None:
    """``stopping`` → ``stopped``: calls written but not placed yet are cancelled; live calls go on."""
    await db.execute(
        update(Call)
        .where(Call.run_id == run.id, Call.call_sid.startswith(PENDING_PREFIX), Call.dialed_at.is_(None))
        .values(status=CallStatus.CANCELED.value, end_reason="run_stopped", ended_at=func.now())
    )
    run.status = RunStatus.STOPPED.value
    run.finished_at = func.now()


async def unplaced_call(db: AsyncSession, run_id: int) -> int | None:
    return await db.scalar(
        select(Call.id)
        .where(
            Call.run_id == run_id,
            Call.call_sid.startswith(PENDING_PREFIX),
            Call.status == CallStatus.QUEUED.value,
        )
        .order_by(Call.id)
        .limit(1)
    )


async def next_step(db: AsyncSession, slots: OutboundSlots, run_id: int) -> Step:
    run = await locked_run(db, run_id)
    if run is None:
        return Finished("missing")
    if run.status == RunStatus.STOPPING:
        await stop(db, run)
        return Finished(RunStatus.STOPPED.value)
    if run.status != RunStatus.RUNNING:
        return Finished(run.status)
    pending = await unplaced_call(db, run.id)
    if pending is not None:
        return Dial(pending)
    lead_ids = run.lead_ids
    if run.cursor >= len(lead_ids):
        run.status = RunStatus.COMPLETED.value
        run.finished_at = func.now()
        return Finished(RunStatus.COMPLETED.value)
    if await slots.live(run.business_id) >= await outbound_limit(db, run.business_id):
        return Wait()
    lead_id = lead_ids[run.cursor]
    run.cursor += 1
    lead = await db.scalar(select(Lead).where(Lead.id == lead_id, Lead.business_id == run.business_id))
    from_number = await sending_number(db, run.business_id)
    if lead is None or not lead.phone or DO_NOT_CALL_TAG in lead.tags or from_number is None:
        run.skipped += 1
        return Skipped(lead_id)
    call_id = await db.scalar(
        insert(Call)
        .values(
            business_id=run.business_id,
            call_sid=placeholder_sid(),
            direction=CallDirection.OUTBOUND.value,
            from_number=from_number,
            to_number=lead.phone,
            lead_id=lead.id,
            status=CallStatus.QUEUED.value,
            run_id=run.id,
            dedup_key=run_dedup_key(run.id, lead.id),
        )
        .on_conflict_do_nothing(index_elements=[Call.dedup_key])
        .returning(Call.id)
    )
    if call_id is None:  # this lead was already called in this run (a duplicate id in the selection)
        run.skipped += 1
        return Skipped(lead_id)
    return Dial(call_id)
