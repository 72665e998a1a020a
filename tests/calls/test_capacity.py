"""Call capacity slots on the real test Redis: limits, atomicity under concurrency, idempotency, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from prosaas_calls.capacity import (
    COUNT_KEY,
    SLOTS_KEY,
    Acquired,
    CallCapacity,
    Refused,
    business_slots_key,
    slot_key,
)
from prosaas_calls.settings import CallsSettings
from prosaas_common.redis import create_redis
from prosaas_common.settings import build_settings
from tests.support import wait_until

MakeCapacity = Callable[..., CallCapacity]


async def server_ms(redis: Redis) -> int:
    """Redis's clock in ms, the one slot expiries are written in."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


@pytest.fixture
def make_capacity(redis: Redis) -> MakeCapacity:
    def make(platform_limit: int = 50, ttl: float = 60.0) -> CallCapacity:
        return CallCapacity(redis, platform_limit, ttl=ttl)

    return make


async def test_the_default_deployment_limit_refuses_the_51st_call(redis: Redis, redis_url: str) -> None:
    settings = build_settings(CallsSettings, app_env="test", redis_url=redis_url)
    capacity = CallCapacity.from_settings(redis, settings)
    assert capacity.platform_limit == 50

    for i in range(50):
        result = await capacity.acquire(f"CA{i}", business_id=i % 5 + 1, business_limit=50)
        assert isinstance(result, Acquired), result

    assert await capacity.acquire("CA50", business_id=99, business_limit=50) == Refused("platform", 50, 50)
    assert await redis.get(COUNT_KEY) == "50"
    assert await redis.zcard(SLOTS_KEY) == 50
    assert await redis.exists(slot_key("CA50"), business_slots_key(99)) == 0


async def test_business_limit_counts_only_that_business(redis: Redis, make_capacity: MakeCapacity) -> None:
    capacity = make_capacity()
    assert isinstance(await capacity.acquire("CA1", 1, business_limit=2), Acquired)
    assert isinstance(await capacity.acquire("CA2", 1, business_limit=2), Acquired)

    assert await capacity.acquire("CA3", 1, business_limit=2) == Refused("business", 2, 2)
    assert isinstance(await capacity.acquire("CA4", 2, business_limit=2), Acquired)
    assert await redis.zcard(business_slots_key(1)) == 2
    assert await capacity.active_count() == 3

    assert await capacity.release("CA1") is True
    assert await redis.zcard(business_slots_key(1)) == 1
    assert isinstance(await capacity.acquire("CA3", 1, business_limit=2), Acquired)


async def test_concurrent_acquires_take_exactly_the_limit(redis: Redis, make_capacity: MakeCapacity) -> None:
    capacity = make_capacity(platform_limit=50)
    results = await asyncio.gather(
        *(capacity.acquire(f"CA{i}", business_id=i % 4 + 1, business_limit=100) for i in range(100))
    )

    taken = {r.call_sid for r in results if isinstance(r, Acquired)}
    refused = [r for r in results if isinstance(r, Refused)]
    assert len(taken) == 50
    assert refused == [Refused("platform", 50, 50)] * 50
    assert set(await redis.zrange(SLOTS_KEY, 0, -1)) == taken
    assert await redis.get(COUNT_KEY) == "50"
    per_business = [await redis.zcard(business_slots_key(b)) for b in range(1, 5)]
    assert sum(per_business) == 50


async def test_concurrent_acquires_of_one_business_take_exactly_its_limit(
    redis: Redis, make_capacity: MakeCapacity
) -> None:
    capacity = make_capacity(platform_limit=50)
    results = await asyncio.gather(*(capacity.acquire(f"CA{i}", 7, business_limit=5) for i in range(30)))

    assert sum(isinstance(r, Acquired) for r in results) == 5
    assert all(r == Refused("business", 5, 5) for r in results if isinstance(r, Refused))
    assert await redis.zcard(business_slots_key(7)) == 5
    assert await capacity.active_count() == 5


async def test_reacquire_and_release_are_idempotent(redis: Redis, make_capacity: MakeCapacity) -> None:
    capacity = make_capacity(platform_limit=2)
    first = await capacity.acquire("CA1", 3, business_limit=1)
    assert first == Acquired("CA1", 3, already_held=False, active=1)

    # A retried webhook of the same call: no second slot, even with the business at its limit.
    assert await capacity.acquire("CA1", 3, business_limit=1) == Acquired(
        "CA1", 3, already_held=True, active=1
    )
    assert isinstance(await capacity.acquire("CA2", 4, business_limit=1), Acquired)
    # And with the deployment full.
    assert await capacity.acquire("CA1", 3, business_limit=1) == Acquired(
        "CA1", 3, already_held=True, active=2
    )
    assert await redis.zcard(SLOTS_KEY) == 2
    assert await redis.zcard(business_slots_key(3)) == 1

    # Stream stop, socket close and the terminal call status may all release: one frees the slot.
    assert [await capacity.release("CA1") for _ in range(3)] == [True, False, False]
    assert await redis.get(COUNT_KEY) == "1"
    assert await redis.exists(slot_key("CA1"), business_slots_key(3)) == 0
    assert await capacity.refresh("CA1") is False


async def test_release_or_refresh_of_an_unknown_call_is_false(
    redis: Redis, make_capacity: MakeCapacity
) -> None:
    capacity = make_capacity()
    assert await capacity.release("CAunknown") is False
    assert await capacity.refresh("CAunknown") is False
    assert await redis.exists(slot_key("CAunknown")) == 0
    assert await capacity.active_count() == 0


async def test_slot_keys_read_well_in_redis_cli(redis: Redis, make_capacity: MakeCapacity) -> None:
    capacity = make_capacity(ttl=60)
    await capacity.acquire("CA1", 12, business_limit=5)

    assert await redis.get(slot_key("CA1")) == "12"
    assert 0 < await redis.pttl(slot_key("CA1")) <= 60_000
    expiry = await redis.zscore(SLOTS_KEY, "CA1")
    assert expiry is not None
    assert await redis.zscore(business_slots_key(12), "CA1") == expiry
    assert 59_000 < expiry - await server_ms(redis) <= 60_000
    assert await redis.get(COUNT_KEY) == "1"

    await capacity.release("CA1")
    assert await redis.get(COUNT_KEY) == "0"
    assert await redis.exists(slot_key("CA1"), SLOTS_KEY, business_slots_key(12)) == 0


async def test_a_killed_process_leaves_no_stuck_slot(
    redis: Redis, redis_url: str, make_capacity: MakeCapacity
) -> None:
    # A calls process takes both slots of the deployment and the business's only slot, then dies.
    dying = create_redis(redis_url)
    crashed = CallCapacity(dying, 2, ttl=0.5)
    assert isinstance(await crashed.acquire("CA1", 1, business_limit=1), Acquired)
    assert isinstance(await crashed.acquire("CA2", 2, business_limit=1), Acquired)
    await dying.aclose()

    capacity = make_capacity(platform_limit=2)
    assert await capacity.acquire("CA3", 1, business_limit=1) == Refused("platform", 2, 2)

    async def all_expired() -> bool:
        # Read as a person would, without an operation that purges: the keys expire by themselves.
        return await redis.get(COUNT_KEY) is None and await redis.exists(SLOTS_KEY, slot_key("CA1")) == 0

    await wait_until(all_expired, timeout=10)
    assert await capacity.release("CA1") is False
    assert await capacity.refresh("CA2") is False
    assert isinstance(await capacity.acquire("CA3", 1, business_limit=1), Acquired)
    assert await capacity.active_count() == 1


async def test_an_expired_slot_frees_capacity_for_the_next_acquire(
    redis: Redis, make_capacity: MakeCapacity
) -> None:
    capacity = make_capacity(platform_limit=2)
    short = make_capacity(platform_limit=2, ttl=0.3)
    assert isinstance(await short.acquire("CAshort", 1, business_limit=2), Acquired)
    assert isinstance(await capacity.acquire("CAlong", 1, business_limit=2), Acquired)
    assert await capacity.acquire("CAnew", 1, business_limit=2) == Refused("platform", 2, 2)
    short_expiry = float(await redis.zscore(SLOTS_KEY, "CAshort"))

    async def short_slot_expired() -> bool:
        return await server_ms(redis) > short_expiry

    await wait_until(short_slot_expired, timeout=10)
    # No release, and both sets still hold a live slot: the acquire itself drops the expired one.
    assert await redis.zcard(SLOTS_KEY) == 2
    assert await capacity.acquire("CAnew", 1, business_limit=2) == Acquired(
        "CAnew", 1, already_held=False, active=2
    )
    assert set(await redis.zrange(SLOTS_KEY, 0, -1)) == {"CAlong", "CAnew"}
    assert set(await redis.zrange(business_slots_key(1), 0, -1)) == {"CAlong", "CAnew"}


async def test_refresh_keeps_a_slot_alive(redis: Redis, make_capacity: MakeCapacity) -> None:
    capacity = make_capacity(ttl=1.0)
    await capacity.acquire("CAlive", 1, business_limit=5)
    await capacity.acquire("CAidle", 1, business_limit=5)
    idle_expiry = await redis.zscore(SLOTS_KEY, "CAidle")
    assert idle_expiry is not None

    async def idle_gone_while_live_refreshed() -> bool:
        assert await capacity.refresh("CAlive") is True
        return await capacity.active_count() == 1

    await wait_until(idle_gone_while_live_refreshed, timeout=10, interval=0.05)
    live_expiry = await redis.zscore(SLOTS_KEY, "CAlive")
    assert live_expiry is not None
    assert live_expiry > idle_expiry
    assert await redis.zscore(business_slots_key(1), "CAlive") == live_expiry
    assert await redis.zrange(business_slots_key(1), 0, -1) == ["CAlive"]
    assert 0 < await redis.pttl(slot_key("CAlive")) <= 1000

    # Once the call stops refreshing, its slot goes the same way.
    async def no_slots() -> bool:
        return await capacity.active_count() == 0

    await wait_until(no_slots, timeout=10)
    assert await capacity.refresh("CAlive") is False


async def test_resetting_the_count_by_hand_neither_frees_slots_nor_sticks(
    redis: Redis, make_capacity: MakeCapacity
) -> None:
    capacity = make_capacity(platform_limit=3)
    for i in range(3):
        await capacity.acquire(f"CA{i}", i, business_limit=1)

    await redis.set(COUNT_KEY, 0)
    assert await capacity.acquire("CA9", 9, business_limit=1) == Refused("platform", 3, 3)
    assert await redis.get(COUNT_KEY) == "3"

    await redis.delete(COUNT_KEY)
    assert await capacity.refresh("CA0") is True
    assert await redis.get(COUNT_KEY) == "3"
    assert await capacity.release("CA0") is True
    assert await redis.get(COUNT_KEY) == "2"


async def test_deleting_a_slot_key_by_hand_ends_that_slot(redis: Redis, make_capacity: MakeCapacity) -> None:
    capacity = make_capacity()
    await capacity.acquire("CA1", 1, business_limit=5)
    await redis.delete(slot_key("CA1"))

    assert await capacity.refresh("CA1") is False
    assert await redis.zcard(SLOTS_KEY) == 0
    assert await redis.get(COUNT_KEY) == "0"


@pytest.mark.parametrize(
    ("platform_limit", "ttl", "message"),
    [(0, 60.0, "platform_limit must be at least 1"), (50, 0.0, "ttl must be positive"), (50, -1.0, "ttl")],
)
async def test_bad_limits_are_refused(redis: Redis, platform_limit: int, ttl: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CallCapacity(redis, platform_limit, ttl=ttl)
