"""Worker fixtures: settings on the test Redis/Postgres, an arq pool, captured logs, in-process workers."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog

from prosaas_common.jobs import Queue
from prosaas_common.logging import clear_context, configure_logging
from prosaas_common.settings import LogFormat, build_settings
from prosaas_worker.jobs import ALL_JOBS
from prosaas_worker.registry import JobSpec
from prosaas_worker.runner import WorkerGroup
from prosaas_worker.settings import WorkerConfig
from tests.worker.jobs import TEST_JOBS

MakeConfig = Callable[..., WorkerConfig]
HERE = Path(__file__).resolve().parent
RunGroup = Callable[..., AbstractAsyncContextManager[WorkerGroup]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # arq 0.28's Worker.close() calls redis-py's deprecated close(); not ours to fix.
    ignore = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(ignore)


class LogCapture:
    """JSON log lines written since the fixture configured logging."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def events(self, name: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            r
            for r in self.records()
            if r.get("event") == name and all(r.get(k) == v for k, v in fields.items())
        ]


@pytest.fixture
def make_config(redis_url: str, database_url: str) -> MakeConfig:
    def make(**overrides: Any) -> WorkerConfig:
        values: dict[str, Any] = {
            "app_env": "test",
            "redis_url": redis_url,
            "database_url": database_url,
            "worker_health_interval": 1,
            "worker_shutdown_grace": 5.0,
        }
        values.update(overrides)
        return build_settings(WorkerConfig, **values)

    return make


def _capture(level: str) -> Iterator[LogCapture]:
    stream = io.StringIO()
    configure_logging("worker", level, LogFormat.JSON, stream=stream)
    clear_context()
    try:
        yield LogCapture(stream)
    finally:
        clear_context()
        structlog.reset_defaults()
        configure_logging("tests", "WARNING", LogFormat.CONSOLE, stream=sys.stderr)


@pytest.fixture
def debug_logs() -> Iterator[LogCapture]:
    yield from _capture("DEBUG")


@pytest.fixture
def info_logs() -> Iterator[LogCapture]:
    yield from _capture("INFO")


@pytest.fixture
def run_group() -> RunGroup:
    """``async with run_group(config) as group``: workers run in this loop until the block ends."""

    @asynccontextmanager
    async def run(
        config: WorkerConfig,
        *,
        queues: Sequence[Queue] | None = None,
        jobs: Sequence[JobSpec] = (*ALL_JOBS, *TEST_JOBS),
    ) -> AsyncIterator[WorkerGroup]:
        group = WorkerGroup(config, queues=queues, jobs=jobs)
        task = asyncio.create_task(group.run(handle_signals=False))
        try:
            yield group
        finally:
            group.request_stop("test over")
            group.request_stop("test over")  # skip the grace: the test already has what it needs
            assert await asyncio.wait_for(task, 15) == 0

    return run


# Fixtures of messages to leads (a local Twilio Messaging API, worker contexts).
from tests.worker.messaging_support import make_worker, twilio  # noqa: E402, F401
