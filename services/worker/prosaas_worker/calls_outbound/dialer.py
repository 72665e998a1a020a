"""Placing one outbound ``calls`` row's call at Twilio, at most once, within the business's semaphore.

1. **Claim** (one transaction, the row locked): the row must be outbound with a placeholder sid (a real
   sid = placed before: nothing to do). A claim younger than ``IN_FLIGHT_S`` means another attempt is
   mid-request: wait. Take the business's outbound slot (:mod:`prosaas_common.outbound_slots`; full →
   wait). Set ``dialed_at`` and commit before any request leaves.
2. **Place**: an older claim means an earlier attempt's answer was lost, so Twilio's call list is searched
   first (a call To/From since then that no row has yet); only when none is found is a call created.
3. **Record**: the real sid and Twilio's status on the row (unless the ``outbound_call`` webhook already
   put it there), and the run's ``placed`` count. A permanent refusal marks the call ``failed`` (and the
   run's ``failed`` count) and gives the slot back; a transient failure gives the slot back and leaves
   the claim, so the next attempt looks the call up before placing it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prosaas_common.db import unit_of_work
from prosaas_common.logging import get_logger
from prosaas_common.models import TERMINAL_CALL_STATUSES, Call, CallDirection, CallStatus, OutboundCallRun
from prosaas_common.outbound_calls import PENDING_PREFIX, is_placeholder, outbound_limit
from prosaas_common.outbound_slots import OutboundSlots
from prosaas_worker.calls_outbound.twilio_calls import DialError, Placed, TwilioCalls

log = get_logger("prosaas.worker.outbound")
# A claim this recent belongs to an attempt still waiting for Twilio's answer (> the HTTP timeout).
IN_FLIGHT_S = 45.0


class Outcome(StrEnum):
    PLACED = "placed"
    ALREADY = "already"  # placed (or ended) before
    MISSING = "missing"  # no such outbound row
    WAITING = "waiting"  # no free slot, or another attempt is in flight
    FAILED = "failed"  # refused for good: the call is failed
    RETRY = "retry"  # a transient failure: try again later


@dataclass(frozen=True)
class Claim:
    call_id: int
    business_id: int
    run_id: int | None
    to_number: str
    from_number: str
    in_doubt_since: datetime | None


async def claim(db: AsyncSession, slots: OutboundSlots, call_id: int) -> Claim | Outcome:
    call = await db.scalar(select(Call).where(Call.id == call_id).with_for_update())
    if call is None or call.direction != CallDirection.OUTBOUND.value:
        return Outcome.MISSING
    if not is_placeholder(call.call_sid) or CallStatus(call.status) in TERMINAL_CALL_STATUSES:
        return Outcome.ALREADY
    if call.dialed_at is not None:
        in_flight = Call.dialed_at > func.now() - timedelta(seconds=IN_FLIGHT_S)
        if await db.scalar(select(in_flight).where(Call.id == call.id)):
            return Outcome.WAITING
    if not await slots.acquire(call.business_id, call.id, await outbound_limit(db, call.business_id)):
        return Outcome.WAITING
    previous = call.dialed_at
    call.dialed_at = func.now()
    return Claim(call.id, call.business_id, call.run_id, call.to_number, call.from_number, previous)


async def lookup(
    db_factory: async_sessionmaker[AsyncSession], twilio: TwilioCalls, c: Claim
) -> Placed | None:
    """The call an earlier attempt placed (its answer lost), if Twilio has one no row claims yet."""
    assert c.in_doubt_since is not None
    candidates = await twilio.find_placed(c.to_number, c.from_number, c.in_doubt_since)
    if not candidates:
        return None
    async with db_factory() as db:
        known = set(
            await db.scalars(select(Call.call_sid).where(Call.call_sid.in_([p.sid for p in candidates])))
        )
    return next((p for p in candidates if p.sid not in known), None)


async def record_placed(db: AsyncSession, c: Claim, placed: Placed) -> None:
    status = placed.status if placed.status in {s.value for s in CallStatus} else CallStatus.QUEUED.value
    await db.execute(
        update(Call)
        .where(Call.id == c.call_id, Call.call_sid.startswith(PENDING_PREFIX))
        .values(call_sid=placed.sid[:64], status=status)
    )
    if c.run_id is not None:
        await db.execute(
            update(OutboundCallRun)
            .where(OutboundCallRun.id == c.run_id)
            .values(placed=OutboundCallRun.placed + 1)
        )


async def record_failed(db: AsyncSession, call_id: int, run_id: int | None, reason: str) -> None:
    """The call will never be placed: ``failed``, with the run's count (once: only a live row moves)."""
    result = await db.execute(
        update(Call)
        .where(Call.id == call_id, Call.status.not_in([s.value for s in TERMINAL_CALL_STATUSES]))
        .values(status=CallStatus.FAILED.value, end_reason=reason[:40], ended_at=func.now())
        .returning(Call.id)
    )
    if result.first() is not None and run_id is not None:
        await db.execute(
            update(OutboundCallRun)
            .where(OutboundCallRun.id == run_id)
            .values(failed=OutboundCallRun.failed + 1)
        )


async def place_call(
    session_factory: async_sessionmaker[AsyncSession], slots: OutboundSlots, twilio: TwilioCalls, call_id: int
) -> Outcome:
    async with unit_of_work(session_factory) as db:
        claimed = await claim(db, slots, call_id)
    if isinstance(claimed, Outcome):
        return claimed
    try:
        placed = await lookup(session_factory, twilio, claimed) if claimed.in_doubt_since else None
        if placed is None:
            placed = await twilio.create(claimed.call_id, claimed.to_number, claimed.from_number)
    except DialError as exc:
        await slots.release(claimed.business_id, claimed.call_id)
        if not exc.permanent:
            log.warning("call.outbound_dial_retry", call_id=call_id, error=str(exc)[:300])
            return Outcome.RETRY
        async with unit_of_work(session_factory) as db:
            await record_failed(db, claimed.call_id, claimed.run_id, "dial_refused")
        log.info("call.outbound_refused", call_id=call_id, error=str(exc)[:300])
        return Outcome.FAILED
    async with unit_of_work(session_factory) as db:
        await record_placed(db, claimed, placed)
    log.info(
        "call.outbound_placed",
        call_id=call_id,
        call_sid=placed.sid,
        business_id=claimed.business_id,
        run_id=claimed.run_id,
        recovered=claimed.in_doubt_since is not None,
    )
    return Outcome.PLACED
