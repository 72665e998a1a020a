"""The worker and the scheduler as real processes, side by side, and the fast schedule list they run.

``FAST_SCHEDULES`` is the production ``SCHEDULES`` list with every schedule (interval or cron) turned into
a 1-second interval, so a test sees every real scheduled job run several times within seconds. It is
built from the real list: a schedule added there is exercised here without editing this module.
"""

from __future__ import annotations

import dataclasses
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from prosaas_scheduler.keys import last_run_key
from prosaas_scheduler.schedule import Schedule
from prosaas_scheduler.schedules import SCHEDULES
from tests.support import service_env, start_process
from tests.worker.procs import ProcessOutput, worker_env

FAST_SCHEDULES: list[Schedule] = [
    dataclasses.replace(schedule, every=timedelta(seconds=1), cron=None) for schedule in SCHEDULES
]
FAST_SCHEDULES_SPEC = "tests.worker.stack:FAST_SCHEDULES"
LEVELS = ("debug", "info", "warning", "error", "critical")


def scheduler_env(redis_url: str, **variables: str) -> dict[str, str]:
    """A scheduler on ``redis_url`` running :data:`FAST_SCHEDULES`, ticking every 0.1 s."""
    extra = {
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "INFO",
        "SCHEDULER_INSTANCE_ID": "test-scheduler",
        "SCHEDULER_SCHEDULES": FAST_SCHEDULES_SPEC,
        "SCHEDULER_TICK_SECONDS": "0.1",
    }
    extra.update({name.upper(): value for name, value in variables.items()})
    return service_env(extra)


def records(output: ProcessOutput, start: int = 0) -> list[dict[str, Any]]:
    """The JSON log records from line ``start`` on; a line that is not a JSON object fails the test."""
    found = []
    for line in output.lines[start:]:
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line!r}\n{output.text()}") from None
        assert isinstance(record, dict), line
        found.append(record)
    return found


def at_least(level: str, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records at ``level`` or above."""
    floor = LEVELS.index(level)
    return [r for r in found if LEVELS.index(str(r.get("level", "critical"))) >= floor]


def index_after(output: ProcessOutput, event: str) -> int:
    """Index of the line just after the first ``event`` record."""
    for number, line in enumerate(list(output.lines)):
        if line.startswith("{") and json.loads(line).get("event") == event:
            return number + 1
    raise AssertionError(f"no {event} line:\n{output.text()}")


async def results_by_schedule(redis: Redis, schedules: list[Schedule]) -> dict[str, int]:
    """How many runs of each schedule finished (arq keeps a result per job id ``schedule:{name}:…``)."""
    counts = {}
    for schedule in schedules:
        keys = [key async for key in redis.scan_iter(f"arq:result:schedule:{schedule.name}:*", count=1000)]
        counts[schedule.name] = len(keys)
    return counts


async def last_runs(redis: Redis, schedules: list[Schedule]) -> dict[str, int]:
    values = await redis.mget([last_run_key(s.name) for s in schedules])
    return {s.name: int(v) if v is not None else 0 for s, v in zip(schedules, values, strict=True)}


@contextmanager
def running_stack(
    redis_url: str, database_url: str, **worker_variables: str
) -> Iterator[tuple[ProcessOutput, ProcessOutput]]:
    """``python -m prosaas_worker run`` (all queues; ``worker_variables`` added to its environment) and
    ``python -m prosaas_scheduler run``; killed on the way out if the test did not stop them itself."""
    variables = {"worker_health_interval": "1", **worker_variables}
    worker = ProcessOutput(
        start_process(["-m", "prosaas_worker", "run"], worker_env(redis_url, database_url, **variables))
    )
    scheduler = ProcessOutput(start_process(["-m", "prosaas_scheduler", "run"], scheduler_env(redis_url)))
    try:
        yield worker, scheduler
    finally:
        worker.kill()
        scheduler.kill()


async def stop(output: ProcessOutput) -> int:
    """SIGTERM and the exit code."""
    if output.proc.poll() is None:
        output.proc.send_signal(signal.SIGTERM)
    return await output.wait_exit()
