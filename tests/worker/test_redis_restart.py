"""A Redis restart (SHUTDOWN SAVE, then the same server again on its port and data directory) while the
worker and the scheduler run: both reconnect by themselves — no process restart —, the scheduler enqueues
again, and every job that was queued across the restart runs exactly once."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.exceptions import BusyLoadingError, ResponseError, WatchError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import JobName, Queue, enqueue
from prosaas_common.redis import create_arq_pool
from prosaas_worker.jobs.system import ping_key
from prosaas_worker.runner import is_redis_outage
from tests.support import wait_until
from tests.worker.redis_server import RedisServer
from tests.worker.stack import FAST_SCHEDULES, last_runs, records, results_by_schedule, running_stack, stop

JOBS = 5
DEFER = timedelta(seconds=3)  # still queued when Redis goes down


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    redis_server = RedisServer(tmp_path)
    await redis_server.start()
    try:
        yield redis_server
    finally:
        redis_server.kill()


async def test_worker_and_scheduler_survive_a_redis_restart(
    server: RedisServer, database_url: str, db_engine: AsyncEngine
) -> None:
    redis: Redis = server.client()
    pool: ArqRedis = await create_arq_pool(server.url)
    try:
        with running_stack(server.url, database_url, log_level="DEBUG") as (worker, scheduler):
            await worker.wait_for_event("worker.started", timeout=30)
            await scheduler.wait_for_event("scheduler.leader_acquired", timeout=30)

            async def every_schedule_ran(baseline: dict[str, int]) -> bool:
                counts = await results_by_schedule(redis, FAST_SCHEDULES)
                return all(counts[name] > baseline.get(name, 0) for name in counts)

            await wait_until(lambda: every_schedule_ran({}), timeout=60, interval=0.2)

            job_ids = [f"restart-ping-{i}" for i in range(JOBS)]
            for i, job_id in enumerate(job_ids):
                job = await enqueue(pool, JobName.SYSTEM_PING, i, job_id=job_id, defer_by=DEFER)
                assert job is not None
            queued = await redis.zrange(Queue.DEFAULT.value, 0, -1)
            assert set(job_ids) <= set(queued)
            assert not any([await redis.exists(ping_key(j)) for j in job_ids])

            await redis.aclose()
            await pool.aclose()
            assert await server.shutdown() == 0
            # Redis stays down until both processes have run into the outage
            await worker.wait_for_event("worker.redis_unavailable", timeout=30)
            await scheduler.wait_for_event("scheduler.redis_unavailable", timeout=30)
            await server.start()
            redis = server.client()
            pool = await create_arq_pool(server.url)

            back_at = int(time.time())
            results_before = await results_by_schedule(redis, FAST_SCHEDULES)

            async def all_pinged() -> bool:
                return all([await redis.exists(ping_key(j)) for j in job_ids])

            async def scheduler_enqueues_again() -> bool:
                now = await last_runs(redis, FAST_SCHEDULES)
                return all(epoch >= back_at + 2 for epoch in now.values())

            try:
                await wait_until(all_pinged, timeout=60, interval=0.2)
                await wait_until(scheduler_enqueues_again, timeout=60, interval=0.2)
                await wait_until(lambda: every_schedule_ran(results_before), timeout=60, interval=0.2)
            except AssertionError:
                raise AssertionError(
                    f"after the restart:\nworker:\n{worker.text()[-6000:]}\nscheduler:\n{scheduler.text()}"
                ) from None
            assert worker.proc.poll() is None, "the worker must reconnect, not exit"
            assert scheduler.proc.poll() is None, "the scheduler must reconnect, not exit"

            for i, job_id in enumerate(job_ids):
                record = json.loads(await redis.get(ping_key(job_id)) or "{}")
                assert (record["payload"], record["job_try"]) == (i, 1)
            assert await stop(worker) == 0
            assert await stop(scheduler) == 0
    finally:
        await redis.aclose()
        await pool.aclose()

    logged = records(worker)
    started = Counter(r["job_id"] for r in logged if r["event"] == "job.started" and r["job_id"] in job_ids)
    succeeded = Counter(
        r["job_id"] for r in logged if r["event"] == "job.succeeded" and r["job_id"] in job_ids
    )
    assert started == succeeded == Counter(job_ids), "every queued job ran exactly once"
    assert [r for r in logged if r["level"] in ("error", "critical")] == []
    # per failing operation, the outage is one WARNING and its end one INFO line, however long it lasted
    for output, prefix in ((logged, "worker"), (records(scheduler), "scheduler")):
        outage = [
            r["key"]
            for r in output
            if r["event"] == f"{prefix}.redis_unavailable" and r["level"] == "warning"
        ]
        recovered = [r["key"] for r in output if r["event"] == f"{prefix}.redis_recovered"]
        assert outage, prefix
        assert sorted(outage) == sorted(set(outage)) == sorted(recovered), prefix


def lost_while_watching() -> WatchError:
    """What redis-py raises when the connection drops inside a WATCH: the ConnectionError is its context."""
    error = WatchError("A ConnectionError occurred on while watching one or more keys")
    error.__context__ = RedisConnectionError("Connection closed by server.")
    return error


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (RedisConnectionError("Error 111 connecting"), True),
        (BusyLoadingError("Redis is loading the dataset in memory"), True),
        (ConnectionRefusedError(111, "refused"), True),
        (lost_while_watching(), True),
        (ResponseError("OOM command not allowed when used memory > 'maxmemory'"), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_a_lost_redis_connection_keeps_the_worker_up(error: Exception, outage: bool) -> None:
    """Anything else still crashes the worker (exit 1) instead of looping on a bug."""
    assert is_redis_outage(error) is outage
