"""Workers started in this process: every queue runs its jobs, logs carry the job context, DNS retries."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus
from redis.asyncio import Redis

from prosaas_common.jobs import Queue, enqueue
from prosaas_worker.jobs.system import ping_key
from prosaas_worker.retry import RetriesExhausted
from tests.support import wait_until
from tests.worker.conftest import LogCapture, MakeConfig, RunGroup
from tests.worker.jobs import mark


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_each_queue_runs_its_jobs_with_context_in_the_logs(
    make_config: MakeConfig, run_group: RunGroup, pool: ArqRedis, redis: Redis, debug_logs: LogCapture
) -> None:
    jobs: dict[Queue, Job] = {}
    for queue in Queue:
        job = await enqueue(pool, "system.ping", {"queue": queue.short_name}, queue=queue)
        assert job is not None
        jobs[queue] = job

    async with run_group(make_config()):
        results = await asyncio.gather(*(job.result(timeout=10, poll_delay=0.05) for job in jobs.values()))

    assert results == [{"queue": q.short_name} for q in jobs]
    for queue, job in jobs.items():
        stored = await redis.get(ping_key(job.job_id))
        assert stored is not None
        record = json.loads(stored)
        assert record["queue"] == queue.short_name
        assert record["job_try"] == 1
        assert record["payload"] == {"queue": queue.short_name}
        assert 0 < await redis.ttl(ping_key(job.job_id)) <= 3600

        expected = {"job_id": job.job_id, "job_try": 1, "job": "system.ping", "queue": queue.short_name}
        [started] = debug_logs.events("job.started", **expected)
        [succeeded] = debug_logs.events("job.succeeded", **expected)
        assert started["level"] == succeeded["level"] == "debug"
        assert succeeded["duration_ms"] >= 0
        assert succeeded["service"] == "worker"

    [started_event] = debug_logs.events("worker.started")
    assert started_event["queues"] == ["high", "default", "low"]
    assert debug_logs.events("worker.stopped")


async def test_a_worker_serves_only_its_queues(
    make_config: MakeConfig, run_group: RunGroup, pool: ArqRedis, redis: Redis
) -> None:
    high = await enqueue(pool, "system.ping", "h", queue=Queue.HIGH)
    low = await enqueue(pool, "system.ping", "l", queue=Queue.LOW)
    assert high is not None
    assert low is not None
    async with run_group(make_config(worker_queues="high")):
        assert await high.result(timeout=10, poll_delay=0.05) == "h"
    assert await low.status() is JobStatus.queued
    assert not await redis.exists(ping_key(low.job_id))


async def test_resources_are_shared_by_every_queue_of_the_process(
    make_config: MakeConfig, run_group: RunGroup, pool: ArqRedis
) -> None:
    jobs = [await enqueue(pool, "resource_ids", queue=queue) for queue in Queue]
    async with run_group(make_config()):
        results = [await job.result(timeout=10, poll_delay=0.05) for job in jobs if job is not None]
    assert len(results) == 3
    assert all(r["select"] == 1 for r in results)
    for key in ("resources", "engine", "redis"):
        assert len({r[key] for r in results}) == 1


async def test_info_level_is_quiet_for_successful_jobs(
    make_config: MakeConfig, run_group: RunGroup, pool: ArqRedis, info_logs: LogCapture
) -> None:
    job = await enqueue(pool, "system.ping", 1)
    assert job is not None
    async with run_group(make_config(worker_queues="default")):
        assert await job.result(timeout=10, poll_delay=0.05) == 1
    events = [r["event"] for r in info_logs.records()]
    assert events == ["worker.started", "worker.stopping", "worker.stopped"]


@pytest.mark.parametrize(
    ("function", "target"),
    [("unresolvable", "smtp.internal"), ("unresolvable_plain", "unresolvable_plain")],
)
async def test_dns_failure_is_retried_after_30_s_without_sleeping(
    make_config: MakeConfig,
    run_group: RunGroup,
    pool: ArqRedis,
    redis: Redis,
    debug_logs: LogCapture,
    function: str,
    target: str,
) -> None:
    before = now_ms()
    job = await enqueue(pool, function, queue=Queue.HIGH)
    assert job is not None
    async with run_group(make_config(worker_queues="high")):

        async def rescheduled() -> bool:
            score = await pool.zscore(Queue.HIGH.value, job.job_id)
            return score is not None and score >= before + 30_000

        await wait_until(rescheduled, timeout=10)
        after = now_ms()

    score = await pool.zscore(Queue.HIGH.value, job.job_id)
    assert score is not None
    assert before + 30_000 <= score <= after + 30_000
    assert await redis.get(f"arq:retry:{job.job_id}") == "1"
    assert await job.status() is JobStatus.deferred
    [retrying] = debug_logs.events("job.retrying", job_id=job.job_id)
    assert retrying["level"] == "info"
    assert retrying["defer_s"] == 30.0
    assert retrying["reason"] == "dns"
    assert retrying["job_try"] == 1
    assert retrying["job"] == function
    assert retrying["target"] == target
    assert retrying["error"].startswith("ConnectionError: could not connect to smtp.internal")
    assert not [r for r in debug_logs.records() if r["level"] == "error"]


async def test_dns_failure_on_the_last_try_fails_the_job_at_once(
    make_config: MakeConfig, run_group: RunGroup, pool: ArqRedis, debug_logs: LogCapture
) -> None:
    job = await pool.enqueue_job("unresolvable", _job_try=5)
    assert job is not None
    async with run_group(make_config(worker_queues="default")):
        with pytest.raises(RetriesExhausted, match="unresolvable gave up after 5 tries: ConnectionError"):
            await job.result(timeout=10, poll_delay=0.05)
    assert await pool.zscore(Queue.DEFAULT.value, job.job_id) is None
    errors = [r for r in debug_logs.records() if r["level"] == "error"]
    assert [(r["event"], r["reason"], r["job_id"], r["job_try"]) for r in errors] == [
        ("job.failed", "retries_exhausted", job.job_id, 5)
    ]
    assert "gaierror" in errors[0]["exception"]


async def test_a_real_error_fails_once_with_one_error_line(
    make_config: MakeConfig, run_group: RunGroup, pool: ArqRedis, redis: Redis, debug_logs: LogCapture
) -> None:
    job = await enqueue(pool, "boom", queue=Queue.LOW)
    assert job is not None
    async with run_group(make_config(worker_queues="low")):
        with pytest.raises(ValueError, match="boom: not a DNS problem"):
            await job.result(timeout=10, poll_delay=0.05)
    assert await pool.zscore(Queue.LOW.value, job.job_id) is None
    assert not await redis.exists(f"arq:retry:{job.job_id}")
    assert not debug_logs.events("job.retrying")
    errors = [r for r in debug_logs.records() if r["level"] == "error"]
    assert len(errors) == 1  # arq's own duplicate ERROR record is dropped
    [failed] = errors
    assert (failed["event"], failed["reason"], failed["job"], failed["job_id"], failed["job_try"]) == (
        "job.failed",
        "error",
        "boom",
        job.job_id,
        1,
    )
    assert "ValueError: boom" in failed["exception"]


async def test_second_stop_request_cancels_running_jobs_and_arq_requeues_them(
    make_config: MakeConfig, run_group: RunGroup, pool: ArqRedis, redis: Redis, debug_logs: LogCapture
) -> None:
    from prosaas_worker.runner import WorkerGroup
    from tests.worker.jobs import TEST_JOBS

    job = await enqueue(pool, "blocking", "forced")
    assert job is not None
    group = WorkerGroup(make_config(worker_queues="default", worker_shutdown_grace=60), jobs=TEST_JOBS)
    task = asyncio.create_task(group.run(handle_signals=False))

    async def started() -> bool:
        return bool(await redis.exists(mark("forced", "started")))

    await wait_until(started)
    group.request_stop("first")
    await asyncio.sleep(0)
    assert not task.done()  # draining: the job still runs
    group.request_stop("second")
    assert await asyncio.wait_for(task, 10) == 0
    assert await redis.get(mark("forced", "cancelled")) == "1"
    assert not await redis.exists(mark("forced", "done"))
    assert await job.status() is JobStatus.queued  # back on the queue for another worker
    assert debug_logs.events("job.cancelled", job_id=job.job_id)
    [stopped] = debug_logs.events("worker.stopped")
    assert stopped["jobs_cancelled"] == 1

    # The next worker runs it again (try 2) and it completes.
    await redis.set(mark("forced", "release"), "1")
    async with run_group(make_config(worker_queues="default")):
        assert await job.result(timeout=10, poll_delay=0.05) == "forced"
    assert await redis.get(mark("forced", "done")) == "2"
