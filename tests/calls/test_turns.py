"""Turns are saved while the call runs (each as soon as the writer gets to it), in order, and what is
still queued when the call ends is saved before the writer stops."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from prosaas_calls.turns import TurnWriter
from prosaas_common.models import Business, Call, CallTurn
from tests.support import wait_until


async def a_call(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.begin() as conn:
        business_id = (
            await conn.execute(insert(Business).values(name="Shop").returning(Business.id))
        ).scalar_one()
        call_id = (
            await conn.execute(
                insert(Call)
                .values(
                    business_id=business_id,
                    call_sid="CA" + "6" * 32,
                    direction="inbound",
                    from_number="+1",
                    to_number="+2",
                )
                .returning(Call.id)
            )
        ).scalar_one()
        return int(business_id), int(call_id)


async def saved(engine: AsyncEngine) -> list[tuple[str, str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(CallTurn.speaker, CallTurn.text, CallTurn.offset_ms).order_by(CallTurn.id)
        )
        return [(speaker, text, offset) for speaker, text, offset in rows.all()]


async def test_turns_are_saved_as_they_come_and_the_rest_on_close(db_engine: AsyncEngine) -> None:
    business_id, call_id = await a_call(db_engine)
    writer = TurnWriter(async_sessionmaker(db_engine), call_id=call_id, business_id=business_id)
    writer.start()

    writer.add("agent", "Hello, Shop here!", 0)

    async def first_saved() -> bool:
        return len(await saved(db_engine)) == 1

    await wait_until(first_saved, timeout=10)  # saved while the call still runs
    writer.add("caller", "  I need a check-up  ", 2400)
    writer.add("caller", "   ", 2500)  # nothing said: nothing saved
    writer.add("agent", "Tuesday at three?", 3100)
    await writer.close()

    assert await saved(db_engine) == [
        ("agent", "Hello, Shop here!", 0),
        ("caller", "I need a check-up", 2400),
        ("agent", "Tuesday at three?", 3100),
    ]
    assert writer.saved == 3
