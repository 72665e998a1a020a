"""Leader lock primitives and in-process leadership: one leader, takeover after death, fast handover."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from arq.connections import ArqRedis
from redis.asyncio import Redis
from structlog.testing import capture_logs

from prosaas_common.jobs import Queue
from prosaas_scheduler.keys import LEADER_KEY, heartbeat_key
from prosaas_scheduler.leader import LeaderLock, current_leader
from prosaas_scheduler.runner import Scheduler, utc_now
from prosaas_scheduler.schedule import Schedule
from tests.scheduler.helpers import MakeScheduler, queued_job_ids, slot_epochs
from tests.scheduler.jobs import TEST_JOB
from tests.support import wait_until

TTL = 1.0
TICK = 0.1


class ManualMonotonic:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


# The lock -------------------------------------------------------------------------------------------


async def test_only_the_holder_can_renew_or_release(redis: Redis) -> None:
    first = LeaderLock(redis, instance_id="first", ttl=30)
    second = LeaderLock(redis, instance_id="second", ttl=30)
    assert await first.acquire()
    assert not await second.acquire()
    assert not await second.renew()
    assert not await second.release()
    assert await current_leader(redis) == "first"
    assert first.held
    assert not second.held
    assert 0 < await redis.pttl(LEADER_KEY) <= 30_000
    assert await first.renew()
    assert await first.release()
    assert not first.held
    assert await current_leader(redis) is None
    assert await second.acquire()
    assert await current_leader(redis) == "second"


async def test_a_lost_lock_is_dropped_on_renewal(redis: Redis) -> None:
    lock = LeaderLock(redis, instance_id="me", ttl=30)
    assert await lock.acquire()
    await redis.set(LEADER_KEY, "someone-else:token")
    assert not await lock.renew()
    assert not lock.held
    assert await redis.get(LEADER_KEY) == "someone-else:token"


async def test_the_local_view_expires_with_the_ttl(redis: Redis) -> None:
    clock = ManualMonotonic()
    lock = LeaderLock(redis, instance_id="me", ttl=10, monotonic=clock)
    assert await lock.acquire()
    clock.value += 9.9
    assert lock.held
    clock.value += 0.2
    assert not lock.held  # even though the key may still exist: never act on a lock that could be gone
    # the key still holds our token: taking it again just extends it
    assert await lock.acquire()
    assert lock.held


async def test_role_changes_are_logged_at_info(redis: Redis, pool: ArqRedis) -> None:
    scheduler = Scheduler(redis, pool, [], instance_id="solo", leader_ttl=30)
    with capture_logs() as logs:
        assert await scheduler.election.step()
        assert await scheduler.election.step()  # a renewal: no new event
        await redis.delete(LEADER_KEY)
        await redis.set(LEADER_KEY, "thief:token")
        assert not await scheduler.election.step()
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("scheduler.leader_acquired", "info"),
        ("scheduler.leader_lost", "info"),
    ]


# Leadership with running loops ----------------------------------------------------------------------


def every_second() -> Schedule:
    return Schedule(
        name="every-second", job=TEST_JOB, queue=Queue.LOW, every=timedelta(seconds=1), on_missed="run_all"
    )


def start(scheduler: Scheduler) -> tuple[asyncio.Task[None], asyncio.Event]:
    stop = asyncio.Event()
    return asyncio.create_task(scheduler.run(stop), name=scheduler.instance_id), stop


async def stop_all(*tasks: tuple[asyncio.Task[None], asyncio.Event]) -> None:
    for _, stop in tasks:
        stop.set()
    await asyncio.gather(*(task for task, _ in tasks), return_exceptions=True)


async def test_two_schedulers_one_leader_then_takeover_when_the_leader_dies(
    make_scheduler: MakeScheduler, redis: Redis, pool: ArqRedis
) -> None:
    options = {"leader_ttl": TTL, "tick_seconds": TICK, "heartbeat_ttl": 2.0, "clock": utc_now}
    a = make_scheduler([every_second()], instance_id="a", **options)
    b = make_scheduler([every_second()], instance_id="b", **options)
    run_a, run_b = start(a), start(b)
    try:

        async def one_leader() -> bool:
            return a.is_leader != b.is_leader and await current_leader(redis) in ("a", "b")

        await wait_until(one_leader, timeout=5)
        # watch for a while: never two leaders, the same one all along
        leader_id = await current_leader(redis)
        for _ in range(20):
            assert not (a.is_leader and b.is_leader)
            assert await current_leader(redis) == leader_id
            await asyncio.sleep(TTL / 10)
        leader, standby = (a, b) if leader_id == "a" else (b, a)
        leader_task = run_a[0] if leader is a else run_b[0]
        roles = {i: json.loads(await redis.get(heartbeat_key(i)))["role"] for i in ("a", "b")}
        assert roles == {leader.instance_id: "leader", standby.instance_id: "standby"}

        await wait_until(lambda: _has_runs(pool, 2), timeout=5)
        leader_task.cancel()  # simulated death: no release, the key must expire by its TTL
        await asyncio.gather(leader_task, return_exceptions=True)
        assert await current_leader(redis) == leader.instance_id

        async def taken_over() -> bool:
            return standby.is_leader and await current_leader(redis) == standby.instance_id

        await wait_until(taken_over, timeout=5)
        before = len(slot_epochs(await queued_job_ids(pool, Queue.LOW), "every-second"))
        await wait_until(lambda: _has_runs(pool, before + 2), timeout=5)
    finally:
        await stop_all(run_a, run_b)

    # across the leader change every one-second slot was enqueued exactly once, without a gap
    epochs = slot_epochs(await queued_job_ids(pool, Queue.LOW), "every-second")
    assert epochs == list(range(epochs[0], epochs[0] + len(epochs)))


async def _has_runs(pool: ArqRedis, count: int) -> bool:
    return len(await queued_job_ids(pool, Queue.LOW)) >= count


async def test_graceful_stop_hands_over_at_once(make_scheduler: MakeScheduler, redis: Redis) -> None:
    # A long TTL: the standby can only take over this fast because the leader released the lock.
    options = {"leader_ttl": 30.0, "tick_seconds": TICK, "heartbeat_ttl": 2.0}
    a = make_scheduler([], instance_id="a", **options)
    run_a = start(a)
    await wait_until(lambda: _leads(a), timeout=5)
    b = make_scheduler([], instance_id="b", **options)
    run_b = start(b)
    try:
        await wait_until(lambda: _heartbeat_role(redis, "b", "standby"), timeout=5)
        with capture_logs() as logs:
            run_a[1].set()
            await run_a[0]
        assert await redis.get(LEADER_KEY) is None or await current_leader(redis) == "b"
        assert await redis.exists(heartbeat_key("a")) == 0
        assert "scheduler.leader_released" in [e["event"] for e in logs]
        await wait_until(lambda: _leads(b), timeout=5)
        await wait_until(lambda: _heartbeat_role(redis, "b", "leader"), timeout=5)
    finally:
        await stop_all(run_a, run_b)
    assert await redis.get(LEADER_KEY) is None


async def _leads(scheduler: Scheduler) -> bool:
    return scheduler.is_leader


async def _heartbeat_role(redis: Redis, instance_id: str, role: str) -> bool:
    raw = await redis.get(heartbeat_key(instance_id))
    return raw is not None and json.loads(raw)["role"] == role
