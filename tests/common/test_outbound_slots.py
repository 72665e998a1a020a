"""The per-business outbound semaphore: concurrent acquires never pass the limit, a slot is held once,
released once, and a slot whose release never came frees itself when its TTL passes."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from prosaas_common.outbound_slots import OutboundSlots, slots_key
from tests.support import wait_until


async def test_concurrent_acquires_never_exceed_the_limit(redis: Redis) -> None:
    slots = OutboundSlots(redis)
    results = await asyncio.gather(*(slots.acquire(7, call_id, 3) for call_id in range(1, 41)))
    assert sum(results) == 3
    assert await slots.live(7) == 3
    assert await slots.live(8) == 0  # another business has its own semaphore
    assert await slots.acquire(8, 100, 3)


async def test_a_holder_keeps_its_slot_and_release_frees_it_once(redis: Redis) -> None:
    slots = OutboundSlots(redis)
    assert await slots.acquire(7, 1, 1)
    assert await slots.acquire(7, 1, 1)  # a retried attempt of the same call
    assert not await slots.acquire(7, 2, 1)
    assert await slots.release(7, 1)
    assert not await slots.release(7, 1)
    assert await slots.acquire(7, 2, 1)


async def test_a_slot_never_released_expires(redis: Redis) -> None:
    slots = OutboundSlots(redis, ttl=0.3)
    assert await slots.acquire(7, 1, 1)
    assert not await slots.acquire(7, 2, 1)
    assert 0 < await redis.pttl(slots_key(7)) <= 300
    await wait_until(lambda: slots.acquire(7, 2, 1), timeout=5)
    assert await slots.live(7) == 1
