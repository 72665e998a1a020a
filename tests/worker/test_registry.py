"""Job registration and the arq-CLI WorkerSettings."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings
from arq.worker import get_kwargs
from redis.asyncio import Redis

from prosaas_common.jobs import Queue, enqueue
from prosaas_worker import runner
from prosaas_worker.jobs import ALL_JOBS
from prosaas_worker.jobs.system import ping, ping_key
from prosaas_worker.registry import arq_functions, job
from tests.support import start_process
from tests.worker.procs import TEST_INSTANCE, ProcessOutput, worker_env


def test_all_jobs_have_unique_names_and_include_ping() -> None:
    names = [f.name for f in arq_functions(ALL_JOBS)]
    assert "system.ping" in names
    assert len(names) == len(set(names))


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="'ping' is registered twice"):
        arq_functions([job(ping), job(ping)])


def test_options_reach_arq() -> None:
    [function] = arq_functions([job(ping, name="system.ping", max_tries=2, timeout_s=7, keep_result_s=0)])
    assert function.name == "system.ping"
    assert (function.max_tries, function.timeout_s, function.keep_result_s) == (2, 7, 0)


def test_arq_cli_worker_settings_for_the_default_queue(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("WORKER_HEALTH_INTERVAL", "7")
    runner._default_arq_settings.cache_clear()
    try:
        settings_cls = runner.WorkerSettings
        options: dict[str, Any] = dict(get_kwargs(settings_cls))
    finally:
        runner._default_arq_settings.cache_clear()
    assert options["queue_name"] == Queue.DEFAULT.value
    assert options["health_check_interval"] == 7
    assert options["redis_settings"].database == RedisSettings.from_dsn(redis_url).database
    assert [f.name for f in options["functions"]] == [f.name for f in arq_functions(ALL_JOBS)]
    assert options["on_startup"] is not None
    assert options["on_job_start"] is not None


def test_runner_has_no_other_lazy_attributes() -> None:
    with pytest.raises(AttributeError):
        _ = runner.NoSuchThing


async def test_arq_cli_runs_the_jobs_with_our_resources(
    redis_url: str, database_url: str, pool: ArqRedis, redis: Redis
) -> None:
    env = worker_env(redis_url, database_url, worker_health_interval="1")
    job = await enqueue(pool, "system.ping", "via arq")
    assert job is not None
    output = ProcessOutput(start_process(["-m", "arq", "prosaas_worker.runner.WorkerSettings"], env))
    try:
        assert await job.result(timeout=20, poll_delay=0.05) == "via arq"
        record = json.loads(await redis.get(ping_key(job.job_id)) or "{}")
        assert record["queue"] == "default"
        check = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "arq", "--check", "prosaas_worker.runner.WorkerSettings", env=env
        )
        assert await check.wait() == 0
        output.proc.send_signal(signal.SIGTERM)
        assert await output.wait_exit() == 0
    finally:
        output.kill()
    assert not await redis.exists(f"arq:queue:default:health-check:{TEST_INSTANCE}")


def test_every_job_name_and_every_schedule_has_a_registered_job() -> None:
    from prosaas_common.jobs import JobName
    from prosaas_scheduler.schedules import SCHEDULES

    registered = {spec.name for spec in ALL_JOBS}
    assert {name.value for name in JobName} <= registered
    assert {schedule.job for schedule in SCHEDULES} <= registered
    assert all("." in name for name in registered), "jobs are named domain.action"
