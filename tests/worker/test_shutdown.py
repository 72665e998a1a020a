"""SIGTERM: no new jobs, the running job finishes within the grace (or is cancelled and requeued), exit 0."""

from __future__ import annotations

import signal

from arq.connections import ArqRedis
from arq.jobs import JobStatus
from redis.asyncio import Redis

from prosaas_common.jobs import enqueue
from prosaas_worker.jobs.system import ping_key
from tests.support import start_process, wait_until
from tests.worker.jobs import mark
from tests.worker.procs import TEST_INSTANCE, ProcessOutput, worker_env

TEST_WORKER = ["-m", "tests.worker.jobs"]  # the production runner plus the test jobs


async def test_sigterm_lets_the_running_job_finish_and_exits_0(
    redis_url: str, database_url: str, pool: ArqRedis, redis: Redis
) -> None:
    env = worker_env(redis_url, database_url, worker_queues="default", worker_shutdown_grace="30")
    job = await enqueue(pool, "blocking", "graceful")
    assert job is not None
    output = ProcessOutput(start_process(TEST_WORKER, env))
    try:

        async def started() -> bool:
            return bool(await redis.exists(mark("graceful", "started")))

        await wait_until(started, timeout=20)
        output.proc.send_signal(signal.SIGTERM)
        stopping = await output.wait_for_event("worker.stopping")
        assert stopping["reason"] == "SIGTERM"
        assert stopping["running_jobs"] == 1

        late = await enqueue(pool, "system.ping", "late")  # arrives while the worker drains
        assert late is not None
        assert output.proc.poll() is None
        await redis.set(mark("graceful", "release"), "1")
        assert await output.wait_exit() == 0
    finally:
        output.kill()

    assert await redis.get(mark("graceful", "done")) == "1"
    assert await job.result(timeout=1) == "graceful"
    assert await late.status() is JobStatus.queued  # never picked after the signal
    assert not await redis.exists(ping_key(late.job_id))
    assert not await redis.exists(f"arq:queue:default:health-check:{TEST_INSTANCE}")
    [stopped] = output.events("worker.stopped")
    assert (stopped["jobs_complete"], stopped["jobs_cancelled"]) == (1, 0)


async def test_a_job_still_running_after_the_grace_is_cancelled_and_requeued(
    redis_url: str, database_url: str, pool: ArqRedis, redis: Redis
) -> None:
    env = worker_env(redis_url, database_url, worker_queues="default", worker_shutdown_grace="0.5")
    job = await enqueue(pool, "blocking", "stubborn")
    assert job is not None
    output = ProcessOutput(start_process(TEST_WORKER, env))
    try:

        async def started() -> bool:
            return bool(await redis.exists(mark("stubborn", "started")))

        await wait_until(started, timeout=20)
        output.proc.send_signal(signal.SIGTERM)
        assert await output.wait_exit() == 0
    finally:
        output.kill()

    assert await redis.get(mark("stubborn", "cancelled")) == "1"
    assert not await redis.exists(mark("stubborn", "done"))
    assert await job.status() is JobStatus.queued
    [cancelled] = output.events("job.cancelled")
    assert cancelled["job_id"] == job.job_id
    assert cancelled["level"] == "warning"
    [stopped] = output.events("worker.stopped")
    assert stopped["jobs_cancelled"] == 1
