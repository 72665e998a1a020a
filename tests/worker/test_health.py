"""``python -m prosaas_worker health`` is true only while a worker of the asked queue runs."""

from __future__ import annotations

import signal

from redis.asyncio import Redis

from tests.support import closed_port, start_process, wait_until
from tests.worker.procs import TEST_INSTANCE, ProcessOutput, run_health, worker_env

HIGH_KEY = f"arq:queue:high:health-check:{TEST_INSTANCE}"


async def test_worker_health_command_true_only_while_a_worker_runs(
    redis_url: str, database_url: str, redis: Redis
) -> None:
    # A long interval: the key would live 31 s, so its absence after SIGTERM proves the clean delete.
    env = worker_env(redis_url, database_url, worker_queues="high", worker_health_interval="30")
    code, out = await run_health(env, "high")
    assert code == 1
    assert f"FAIL high: no {HIGH_KEY}" in out

    output = ProcessOutput(start_process(["-m", "prosaas_worker", "run"], env))
    try:

        async def healthy() -> bool:
            return (await run_health(env, "high"))[0] == 0

        await wait_until(healthy, timeout=20, interval=0.1)
        code, out = await run_health(env, "high")
        assert code == 0
        assert out.startswith(f"ok   high: {HIGH_KEY} = ")
        assert "j_complete=0" in out

        code, out = await run_health(env, "low")
        assert code == 1
        assert f"FAIL low: no arq:queue:low:health-check:{TEST_INSTANCE}" in out

        code, out = await run_health(env, "high", "low")
        assert code == 1
        assert "ok   high:" in out
        assert "FAIL low:" in out

        assert (await run_health(env))[0] == 0  # default: the queues of WORKER_QUEUES

        output.proc.send_signal(signal.SIGTERM)
        assert await output.wait_exit() == 0
    finally:
        output.kill()

    assert not await redis.exists(HIGH_KEY)
    code, out = await run_health(env, "high")
    assert code == 1
    assert f"FAIL high: no {HIGH_KEY}" in out
    [started] = output.events("worker.started")
    assert started["queues"] == ["high"]
    assert output.events("worker.stopped")


async def test_health_fails_once_a_killed_worker_stops_refreshing_its_key(
    redis_url: str, database_url: str, redis: Redis
) -> None:
    env = worker_env(redis_url, database_url, worker_queues="high", worker_health_interval="1")
    output = ProcessOutput(start_process(["-m", "prosaas_worker", "run"], env))
    try:

        async def healthy() -> bool:
            return (await run_health(env, "high"))[0] == 0

        await wait_until(healthy, timeout=20, interval=0.1)
        assert 0 < await redis.pttl(HIGH_KEY) <= 2000  # interval + 1 s
    finally:
        output.kill()  # SIGKILL: no clean shutdown, the key is left to expire

    async def unhealthy() -> bool:
        return (await run_health(env, "high"))[0] == 1

    await wait_until(unhealthy, timeout=10, interval=0.1)


async def test_health_fails_clearly_when_redis_is_unreachable(database_url: str) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    code, out = await run_health(worker_env(url, database_url), "default")
    assert code == 1
    assert out.startswith(f"FAIL Redis unreachable at {url}: ")


async def test_health_rejects_an_unknown_queue(redis_url: str, database_url: str) -> None:
    code, out = await run_health(worker_env(redis_url, database_url), "urgent")
    assert code == 2
    assert "unknown queue 'urgent' (choose from high, default, low)" in out


async def test_each_instance_reports_its_own_health(redis_url: str, database_url: str) -> None:
    """Two worker processes on one queue (`--scale worker=2`): each health check sees its own worker."""
    env_a = {**worker_env(redis_url, database_url, worker_queues="high"), "WORKER_INSTANCE_ID": "worker-a"}
    env_b = {**env_a, "WORKER_INSTANCE_ID": "worker-b"}
    first = ProcessOutput(start_process(["-m", "prosaas_worker", "run"], env_a))
    second = ProcessOutput(start_process(["-m", "prosaas_worker", "run"], env_b))
    try:

        async def both_healthy() -> bool:
            return (await run_health(env_a, "high"))[0] == 0 and (await run_health(env_b, "high"))[0] == 0

        await wait_until(both_healthy, timeout=20, interval=0.1)
        first.proc.send_signal(signal.SIGTERM)
        assert await first.wait_exit() == 0
        code, out = await run_health(env_a, "high")
        assert code == 1
        assert "no arq:queue:high:health-check:worker-a" in out
        assert (await run_health(env_b, "high"))[0] == 0, "a sibling's clean stop must not blank this one"
        code, out = await run_health(env_a, "high", any_instance=True)
        assert code == 0
        assert "arq:queue:high:health-check:worker-b" in out
        second.proc.send_signal(signal.SIGTERM)
        assert await second.wait_exit() == 0
    finally:
        first.kill()
        second.kill()
    assert (await run_health(env_a, "high", any_instance=True))[0] == 1
