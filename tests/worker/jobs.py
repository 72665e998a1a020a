"""Jobs that exist only in tests (slow, failing, introspecting) and a worker app that also runs them.

``python -m tests.worker.jobs`` runs the production runner with these jobs added, so shutdown tests
can observe a long job in a real process with real signals.
"""

from __future__ import annotations

import asyncio
import socket
import sys

from sqlalchemy import text

from prosaas_common.db import unit_of_work
from prosaas_common.logging import configure_from_settings
from prosaas_worker.context import JobContext, get_resources
from prosaas_worker.jobs import ALL_JOBS
from prosaas_worker.registry import JobSpec, job
from prosaas_worker.retry import retry_dns_errors
from prosaas_worker.runner import run_workers
from prosaas_worker.settings import load_worker_config


def mark(name: str, state: str) -> str:
    return f"test:{name}:{state}"


async def blocking(ctx: JobContext, name: str) -> str:
    """Set ``test:{name}:started``, wait until a test sets ``test:{name}:release``, set ``…:done``."""
    redis = get_resources(ctx).redis
    await redis.set(mark(name, "started"), str(ctx["job_try"]))
    try:
        # The release comes from the test (maybe another process) through Redis, hence polling.
        while not await redis.exists(mark(name, "release")):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        await redis.set(mark(name, "cancelled"), str(ctx["job_try"]))
        raise
    await redis.set(mark(name, "done"), str(ctx["job_try"]))
    return name


def unresolved_host_error() -> ConnectionError:
    """What a client library raises when a host name does not resolve: a wrapped ``gaierror``."""
    error = ConnectionError("could not connect to smtp.internal:25")
    error.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return error


@retry_dns_errors("smtp.internal")
async def unresolvable(ctx: JobContext) -> None:
    raise unresolved_host_error()


async def unresolvable_plain(ctx: JobContext) -> None:
    """Same failure without the decorator: the worker's default DNS policy applies."""
    raise unresolved_host_error()


@retry_dns_errors
async def boom(ctx: JobContext) -> None:
    raise ValueError("boom: not a DNS problem")


async def resource_ids(ctx: JobContext) -> dict[str, int]:
    """Identities of the shared resources and a real query through the session factory."""
    resources = get_resources(ctx)
    async with unit_of_work(resources.session_factory) as session:
        one = (await session.execute(text("SELECT 1"))).scalar_one()
    return {
        "resources": id(resources),
        "engine": id(resources.engine),
        "redis": id(resources.redis),
        "select": int(one),
    }


TEST_JOBS: tuple[JobSpec, ...] = (
    job(blocking),
    job(unresolvable),
    job(unresolvable_plain),
    job(boom),
    job(resource_ids),
)


def main() -> int:
    settings = load_worker_config()
    configure_from_settings(settings, "worker")
    return asyncio.run(run_workers(settings, jobs=(*ALL_JOBS, *TEST_JOBS)))


if __name__ == "__main__":
    sys.exit(main())
