"""Two real `python -m prosaas_scheduler run` processes: one leader, SIGKILL it, the other takes over."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis

from prosaas_common.jobs import Queue
from prosaas_scheduler.keys import LEADER_KEY, heartbeat_key
from prosaas_scheduler.leader import current_leader
from tests.scheduler.helpers import queued_job_ids, slot_epochs
from tests.support import ROOT, closed_port, run_module, service_env, start_process, stop_process, wait_until

TIMINGS = {"SCHEDULER_LEADER_TTL": "1", "SCHEDULER_TICK_SECONDS": "0.1", "SCHEDULER_HEARTBEAT_TTL": "1.5"}


def scheduler_env(redis_url: str, instance_id: str) -> dict[str, str]:
    return service_env(
        {
            "REDIS_URL": redis_url,
            "SCHEDULER_INSTANCE_ID": instance_id,
            "SCHEDULER_SCHEDULES": "tests.scheduler.jobs:PROCESS_SCHEDULES",
            "LOG_LEVEL": "INFO",
            **TIMINGS,
        }
    )


async def health(redis_url: str, instance_id: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "prosaas_scheduler",
        "health",
        env=scheduler_env(redis_url, instance_id),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode().strip()


@pytest.fixture
def processes(redis_url: str) -> Iterator[dict[str, subprocess.Popen[str]]]:
    procs = {
        name: start_process(["-m", "prosaas_scheduler", "run"], scheduler_env(redis_url, name))
        for name in "ab"
    }
    try:
        yield procs
    finally:
        for proc in procs.values():
            stop_process(proc)


async def test_leader_dies_and_the_standby_takes_over(
    processes: dict[str, subprocess.Popen[str]], redis_url: str, redis: Redis, pool: ArqRedis
) -> None:
    async def roles() -> dict[str, str]:
        found = {}
        for name in processes:
            raw = await redis.get(heartbeat_key(name))
            if raw is not None:
                found[name] = json.loads(raw)["role"]
        return found

    async def one_leader_one_standby() -> bool:
        seen = await roles()
        leader = await current_leader(redis)
        return sorted(seen.values()) == ["leader", "standby"] and seen.get(leader or "") == "leader"

    await wait_until(one_leader_one_standby, timeout=20)
    leader = await current_leader(redis)
    assert leader is not None
    standby = "b" if leader == "a" else "a"

    code, out = await health(redis_url, leader)
    assert code == 0, out
    assert "alive, leader" in out
    code, out = await health(redis_url, standby)
    assert code == 0, out
    assert "alive, standby" in out
    code, out = await health(redis_url, "nobody")
    assert code == 1
    assert "no heartbeat" in out

    async def runs_enqueued(count: int) -> bool:
        return len(await queued_job_ids(pool, Queue.LOW)) >= count

    await wait_until(lambda: runs_enqueued(2), timeout=10)
    processes[leader].send_signal(signal.SIGKILL)
    processes[leader].wait(5)

    async def standby_leads() -> bool:
        return await current_leader(redis) == standby and (await roles()).get(standby) == "leader"

    await wait_until(standby_leads, timeout=10)
    before = len(await queued_job_ids(pool, Queue.LOW))
    await wait_until(lambda: runs_enqueued(before + 2), timeout=10)

    async def dead_is_unhealthy() -> bool:
        code, _ = await health(redis_url, leader)
        return code == 1

    await wait_until(dead_is_unhealthy, timeout=10, interval=0.3)
    code, out = await health(redis_url, standby)
    assert (code, "alive, leader" in out) == (0, True), out

    # graceful stop of the survivor: exit 0, lock released at once, heartbeat gone
    output = stop_process(processes[standby])
    assert processes[standby].returncode == 0, output
    assert await redis.exists(LEADER_KEY, heartbeat_key(standby)) == 0
    events = [json.loads(line)["event"] for line in output.splitlines() if line.startswith("{")]
    assert "scheduler.leader_acquired" in events
    assert events[-2:] == ["scheduler.leader_released", "scheduler.stopped"]
    assert "Traceback" not in output

    # every one-second slot was enqueued exactly once across the leader change
    epochs = slot_epochs(await queued_job_ids(pool, Queue.LOW), "every-second")
    assert epochs == list(range(epochs[0], epochs[0] + len(epochs)))


async def test_health_fails_when_redis_is_unreachable() -> None:
    code, out = await health(f"redis://127.0.0.1:{closed_port()}/0", "a")
    assert code == 1
    assert "redis unreachable" in out
    assert len(out.splitlines()) == 1


def test_a_bad_schedule_spec_exits_with_a_configuration_error(redis_url: str) -> None:
    env = scheduler_env(redis_url, "x") | {"SCHEDULER_SCHEDULES": "tests.scheduler.jobs:DUPLICATE_NAMES"}
    result = run_module(["-m", "prosaas_scheduler", "run"], env, timeout=30)
    assert result.returncode == 2
    assert "SCHEDULER_SCHEDULES" in result.stderr
    assert "duplicate schedule name 'hourly'" in result.stderr


def test_bad_timings_are_refused_at_start(redis_url: str) -> None:
    env = scheduler_env(redis_url, "x") | {"SCHEDULER_HEARTBEAT_TTL": "0.1"}
    result = run_module(["-m", "prosaas_scheduler", "health"], env, timeout=30)
    assert result.returncode == 2
    assert "SCHEDULER_HEARTBEAT_TTL" in result.stderr
