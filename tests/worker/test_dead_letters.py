"""Jobs that fail for good land in ``dead_letters`` (name, arguments, queue, tries, error) and can be
enqueued again from the command line."""

from __future__ import annotations

import pytest
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import Queue, enqueue
from prosaas_worker.dead_letters import list_dead_letters, rerun
from prosaas_worker.retry import RetriesExhausted
from tests.worker.conftest import MakeConfig, RunGroup


async def test_a_failed_job_is_recorded_with_its_arguments_and_can_be_rerun(
    make_config: MakeConfig, run_group: RunGroup, pool: ArqRedis, db_engine: AsyncEngine
) -> None:
    job = await enqueue(pool, "boom", queue=Queue.LOW, job_id="boom-1")
    assert job is not None
    config = make_config(worker_queues="low")
    async with run_group(config):
        with pytest.raises(ValueError, match="boom"):
            await job.result(timeout=10, poll_delay=0.05)
    [row] = await list_dead_letters(config, 10)
    assert (row.job_name, row.job_id, row.queue, row.args, row.kwargs, row.tries) == (
        "boom",
        "boom-1",
        "low",
        [],
        {},
        1,
    )
    assert row.error == "ValueError: boom: not a DNS problem"
    assert row.rerun_at is None

    new_job_id = await rerun(config, row.id)
    assert new_job_id is not None
    assert new_job_id.startswith(f"rerun:{row.id}:")
    queued = {j.job_id: j for j in await pool.queued_jobs(queue_name=Queue.LOW.value)}
    assert queued[new_job_id].function == "boom"
    [again] = await list_dead_letters(config, 10)
    assert again.rerun_at is not None
    assert await rerun(config, row.id + 1000) is None


async def test_retries_exhausted_is_recorded_once(
    make_config: MakeConfig, run_group: RunGroup, pool: ArqRedis, db_engine: AsyncEngine
) -> None:
    job = await pool.enqueue_job("unresolvable", _job_try=5)
    assert job is not None
    config = make_config(worker_queues="default")
    async with run_group(config):
        with pytest.raises(RetriesExhausted):
            await job.result(timeout=10, poll_delay=0.05)
    rows = await list_dead_letters(config, 10)
    assert [(r.job_name, r.queue, r.tries) for r in rows] == [("unresolvable", "default", 5)]
    assert "gave up after 5 tries" in rows[0].error
