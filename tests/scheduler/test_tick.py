"""Ticks driven by a fake clock: late and irregular ticks neither skip nor double a run."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis
from structlog.testing import capture_logs

from prosaas_common.jobs import Queue, enqueue
from prosaas_common.redis import create_redis
from prosaas_scheduler.keys import job_id, last_run_key
from prosaas_scheduler.leader import LeaderLock
from prosaas_scheduler.runner import MAX_RUNS_PER_TICK, EnqueuedRun, Scheduler
from prosaas_scheduler.schedule import Schedule, to_epoch
from tests.scheduler.helpers import FakeClock, MakeScheduler, queued_job_ids, slot_epochs
from tests.scheduler.jobs import TEST_JOB
from tests.support import closed_port

T0 = datetime(2024, 3, 1, 0, 0, 10, tzinfo=UTC)


def hourly(name: str = "hourly", **options: Any) -> Schedule:
    if "cron" not in options:
        options.setdefault("every", timedelta(hours=1))
    return Schedule(name=name, job=TEST_JOB, queue=Queue.DEFAULT, **options)


async def leading(scheduler: Scheduler) -> Scheduler:
    assert await scheduler.lock.acquire()
    return scheduler


async def last_run(redis: Redis, name: str) -> int | None:
    value = await redis.get(last_run_key(name))
    return None if value is None else int(value)


@pytest.mark.parametrize("schedule", [hourly(), hourly(cron="0 * * * *")], ids=["interval", "cron"])
async def test_24_hours_of_late_irregular_ticks_enqueue_each_hourly_slot_once(
    schedule: Schedule, make_scheduler: MakeScheduler, pool: ArqRedis, clock: FakeClock
) -> None:
    # Ticks 61-89 s apart never land on minute :00 reliably; matching "minute == 0" would skip runs.
    scheduler = await leading(make_scheduler([schedule], leader_ttl=60))
    rng = random.Random(20240301)  # noqa: S311 - reproducible jitter, not crypto
    enqueued = []
    while clock.now < T0 + timedelta(hours=24, minutes=2):  # the last tick lands past midnight
        enqueued.extend(await scheduler.tick())
        clock.now += timedelta(seconds=rng.uniform(61, 89))

    expected = [to_epoch(datetime(2024, 3, 1, 0, tzinfo=UTC) + timedelta(hours=h)) for h in range(1, 25)]
    assert [to_epoch(run.slot) for run in enqueued] == expected
    assert not any(run.duplicate for run in enqueued)
    ids = await queued_job_ids(pool)
    assert len(ids) == 24
    assert slot_epochs(ids, "hourly") == expected
    # Each run is late by less than one tick gap, never more.
    jobs = {job.job_id: job for job in await pool.queued_jobs(queue_name=Queue.DEFAULT.value)}
    first = jobs[job_id("hourly", expected[0])]
    assert first.function == TEST_JOB
    assert first.kwargs == {"scheduled_for": "2024-03-01T01:00:00+00:00"}


async def test_first_tick_anchors_and_the_first_run_is_the_next_slot(
    make_scheduler: MakeScheduler, redis: Redis, pool: ArqRedis
) -> None:
    scheduler = await leading(make_scheduler([hourly()], leader_ttl=60))
    exactly_on_a_slot = datetime(2024, 3, 1, 5, tzinfo=UTC)
    assert await scheduler.tick(exactly_on_a_slot) == []
    assert await last_run(redis, "hourly") == to_epoch(exactly_on_a_slot)
    assert await scheduler.tick(exactly_on_a_slot + timedelta(minutes=59)) == []
    runs = await scheduler.tick(exactly_on_a_slot + timedelta(hours=1, seconds=3))
    assert [run.slot for run in runs] == [datetime(2024, 3, 1, 6, tzinfo=UTC)]
    assert await queued_job_ids(pool) == ["schedule:hourly:" + str(to_epoch(runs[0].slot))]


@pytest.mark.parametrize(
    ("on_missed", "expected_hours"), [("run_once", [3]), ("run_all", [2, 3])], ids=["run_once", "run_all"]
)
async def test_a_tick_late_past_two_slots(
    on_missed: str, expected_hours: list[int], make_scheduler: MakeScheduler, redis: Redis, pool: ArqRedis
) -> None:
    scheduler = await leading(make_scheduler([hourly(on_missed=on_missed)], leader_ttl=60))
    await scheduler.tick(datetime(2024, 3, 1, 1, 0, 5, tzinfo=UTC))  # anchors at 01:00
    with capture_logs() as logs:
        runs = await scheduler.tick(datetime(2024, 3, 1, 3, 0, 30, tzinfo=UTC))  # 02:00 and 03:00 due

    expected = [to_epoch(datetime(2024, 3, 1, h, tzinfo=UTC)) for h in expected_hours]
    assert [to_epoch(run.slot) for run in runs] == expected
    assert slot_epochs(await queued_job_ids(pool), "hourly") == expected
    assert await last_run(redis, "hourly") == expected[-1]
    coalesced = [entry for entry in logs if entry["event"] == "scheduler.runs_coalesced"]
    if on_missed == "run_once":
        assert len(coalesced) == 1
        assert coalesced[0]["due"] == 2
        assert coalesced[0]["log_level"] == "info"
    else:
        assert coalesced == []
    assert not [entry for entry in logs if entry["log_level"] in ("warning", "error", "critical")]


async def test_run_all_catches_up_at_most_100_per_tick(
    make_scheduler: MakeScheduler, redis: Redis, pool: ArqRedis
) -> None:
    schedule = Schedule(
        name="minutely", job=TEST_JOB, queue=Queue.LOW, every=timedelta(minutes=1), on_missed="run_all"
    )
    scheduler = await leading(make_scheduler([schedule], leader_ttl=60))
    start = datetime(2024, 3, 1, 0, 0, 30, tzinfo=UTC)
    await scheduler.tick(start)
    now = start + timedelta(minutes=250)
    with capture_logs() as logs:
        sizes = [len(await scheduler.tick(now)) for _ in range(4)]
    assert sizes == [MAX_RUNS_PER_TICK, MAX_RUNS_PER_TICK, 50, 0]
    assert [e["event"] for e in logs if e["event"] == "scheduler.catching_up"] == [
        "scheduler.catching_up"
    ] * 2
    epochs = slot_epochs(await queued_job_ids(pool, Queue.LOW), "minutely")
    assert epochs == [to_epoch(start) - 30 + 60 * m for m in range(1, 251)]


async def test_schedule_kwargs_reach_the_job(make_scheduler: MakeScheduler, pool: ArqRedis) -> None:
    schedule = hourly("with-kwargs", kwargs={"batch": 50, "kind": "reminders"})
    scheduler = await leading(make_scheduler([schedule], leader_ttl=60))
    await scheduler.tick(datetime(2024, 3, 1, 0, 30, tzinfo=UTC))
    await scheduler.tick(datetime(2024, 3, 1, 1, 0, 1, tzinfo=UTC))
    [job] = await pool.queued_jobs(queue_name=Queue.DEFAULT.value)
    assert job.job_id == "schedule:with-kwargs:1709254800"
    assert job.kwargs == {"scheduled_for": "2024-03-01T01:00:00+00:00", "batch": 50, "kind": "reminders"}


async def test_a_standby_never_enqueues(make_scheduler: MakeScheduler, redis: Redis, pool: ArqRedis) -> None:
    scheduler = make_scheduler([hourly()], leader_ttl=60)
    assert await scheduler.tick(datetime(2024, 3, 1, 0, 30, tzinfo=UTC)) == []
    assert await scheduler.tick(datetime(2024, 3, 1, 5, 30, tzinfo=UTC)) == []
    assert await last_run(redis, "hourly") is None
    assert await queued_job_ids(pool) == []


# Duplicate protection -------------------------------------------------------------------------------


async def test_repeating_a_tick_with_the_same_now_enqueues_nothing_more(
    make_scheduler: MakeScheduler, pool: ArqRedis
) -> None:
    scheduler = await leading(make_scheduler([hourly(on_missed="run_all")], leader_ttl=60))
    await scheduler.tick(datetime(2024, 3, 1, 0, 30, tzinfo=UTC))
    now = datetime(2024, 3, 1, 4, 0, 0, tzinfo=UTC)
    assert len(await scheduler.tick(now)) == 4
    for _ in range(3):
        assert await scheduler.tick(now) == []
    assert len(await queued_job_ids(pool)) == 4


async def test_two_instances_that_both_believe_they_lead_never_double_a_slot(
    make_scheduler: MakeScheduler, redis: Redis, pool: ArqRedis
) -> None:
    # Split brain, simulated: each instance holds a lock on its own key, so both tick as leader.
    schedules = [hourly("a", on_missed="run_all"), hourly("b", cron="*/30 * * * *")]
    first = make_scheduler(schedules, lock=LeaderLock(redis, instance_id="one", ttl=60, key="test:lock:1"))
    second = make_scheduler(schedules, lock=LeaderLock(redis, instance_id="two", ttl=60, key="test:lock:2"))
    await leading(first)
    await leading(second)
    rng = random.Random(7)  # noqa: S311 - reproducible jitter, not crypto
    now = datetime(2024, 3, 1, 0, 0, 1, tzinfo=UTC)
    results: list[list[EnqueuedRun]] = []
    for _ in range(200):
        # both tick concurrently, each with a slightly different view of "now"
        skew = timedelta(seconds=rng.uniform(-20, 20))
        results.extend(await asyncio.gather(first.tick(now), second.tick(now + skew)))
        now += timedelta(seconds=rng.uniform(30, 400))

    runs = [run for batch in results for run in batch]
    ids = await queued_job_ids(pool)
    assert len(ids) == len(set(ids))
    fresh = [run.job_id for run in runs if not run.duplicate]
    assert sorted(fresh) == sorted(ids)
    a_slots = slot_epochs(ids, "a")
    assert a_slots == list(range(a_slots[0], a_slots[-1] + 3600, 3600))  # no gap, no double
    b_slots = slot_epochs(ids, "b")  # run_once: coalesced when a gap spans two slots, never doubled
    assert len(b_slots) > 10
    assert all(slot % 1800 == 0 for slot in b_slots)


async def test_last_run_never_moves_backwards(
    make_scheduler: MakeScheduler, redis: Redis, pool: ArqRedis
) -> None:
    ahead = await leading(
        make_scheduler([hourly()], lock=LeaderLock(redis, instance_id="a", ttl=60, key="k:1"))
    )
    behind = await leading(
        make_scheduler([hourly()], lock=LeaderLock(redis, instance_id="b", ttl=60, key="k:2"))
    )
    await ahead.tick(datetime(2024, 3, 1, 9, 30, tzinfo=UTC))
    await ahead.tick(datetime(2024, 3, 1, 10, 0, 2, tzinfo=UTC))
    ten = to_epoch(datetime(2024, 3, 1, 10, tzinfo=UTC))
    assert await last_run(redis, "hourly") == ten
    # an instance whose clock is an hour behind finds nothing due and cannot move the key back
    assert await behind.tick(datetime(2024, 3, 1, 9, 0, 5, tzinfo=UTC)) == []
    assert await last_run(redis, "hourly") == ten
    assert await queued_job_ids(pool) == [job_id("hourly", ten)]
    # two instances anchoring a new schedule at once: the later anchor wins whatever the order
    await redis.delete(last_run_key("hourly"))
    await asyncio.gather(
        ahead.tick(datetime(2024, 3, 1, 10, 0, 2, tzinfo=UTC)),
        behind.tick(datetime(2024, 3, 1, 9, 0, 5, tzinfo=UTC)),
    )
    assert await last_run(redis, "hourly") == ten


async def test_a_crash_between_enqueue_and_advance_does_not_double_the_run(
    make_scheduler: MakeScheduler, redis: Redis, pool: ArqRedis
) -> None:
    scheduler = await leading(make_scheduler([hourly()], leader_ttl=60))
    await scheduler.tick(datetime(2024, 3, 1, 0, 30, tzinfo=UTC))
    slot = datetime(2024, 3, 1, 1, tzinfo=UTC)
    # the previous leader enqueued 01:00 and died before advancing last_run
    await enqueue(pool, TEST_JOB, job_id=job_id("hourly", to_epoch(slot)), scheduled_for=slot.isoformat())
    [run] = await scheduler.tick(datetime(2024, 3, 1, 1, 0, 4, tzinfo=UTC))
    assert run.duplicate
    assert await queued_job_ids(pool) == [job_id("hourly", to_epoch(slot))]
    assert await last_run(redis, "hourly") == to_epoch(slot)


# Failures -------------------------------------------------------------------------------------------


async def test_one_broken_schedule_does_not_stop_the_others(
    make_scheduler: MakeScheduler, pool: ArqRedis
) -> None:
    broken = hourly("broken", kwargs={"callback": lambda: None})  # arq cannot pickle a lambda
    scheduler = await leading(make_scheduler([broken, hourly("fine")], leader_ttl=60))
    await scheduler.tick(datetime(2024, 3, 1, 0, 30, tzinfo=UTC))
    with capture_logs() as logs:
        for hour in (1, 2, 3):
            await scheduler.tick(datetime(2024, 3, 1, hour, 0, 1, tzinfo=UTC))
    assert len(slot_epochs(await queued_job_ids(pool), "fine")) == 3
    failures = [e for e in logs if e["event"] == "scheduler.schedule_failed"]
    assert [e["log_level"] for e in failures] == ["warning"]  # then quiet


async def test_a_redis_outage_is_logged_once_and_never_raises(pool: ArqRedis) -> None:
    dead = create_redis(f"redis://127.0.0.1:{closed_port()}/0")
    try:
        scheduler = Scheduler(dead, pool, [hourly()], instance_id="lonely", leader_ttl=1, tick_seconds=0.05)
        with capture_logs() as logs:
            for _ in range(3):
                await scheduler.election.step()
                await scheduler.run_once()
        assert not scheduler.is_leader
        levels = [(e["event"], e["log_level"]) for e in logs]
        assert levels.count(("scheduler.redis_unavailable", "warning")) == 2  # one per loop, then quiet
        assert not [e for e in logs if e["log_level"] in ("error", "critical")]
    finally:
        await dead.aclose()
