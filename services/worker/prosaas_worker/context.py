"""Per-process resources that jobs reach through the arq ``ctx``.

One engine, one session factory and one general Redis client per process, however many queues the
process serves: the runner creates them once and gives every worker a ctx holding the same objects.
arq itself adds ``ctx["redis"]`` (its own pool, for enqueueing follow-up jobs) and the per-job keys
``job_id``, ``job_try``, ``enqueue_time`` and ``score``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from prosaas_common.db import create_engine, create_session_factory
from prosaas_common.jobs import Queue
from prosaas_common.redis import create_redis
from prosaas_worker.settings import SERVICE, WorkerConfig

JobContext = dict[Any, Any]

# Keys our code puts in the arq ctx (besides arq's own).
RESOURCES_KEY = "resources"
QUEUE_KEY = "queue"
MAX_TRIES_KEY = "max_tries"
# arq's default; a job with a Retry on its last try fails for good.
DEFAULT_MAX_TRIES = 5


@dataclass(frozen=True)
class WorkerResources:
    """What every job of the process shares."""

    settings: WorkerConfig
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    redis: Redis

    @classmethod
    def create(cls, settings: WorkerConfig) -> WorkerResources:
        """Build the resources; nothing connects yet, so a worker starts while a dependency is down."""
        engine = create_engine(settings, SERVICE)
        return cls(
            settings=settings,
            engine=engine,
            session_factory=create_session_factory(engine),
            redis=create_redis(settings.redis_url),
        )

    async def dispose(self) -> None:
        try:
            await self.redis.aclose()
        finally:
            await self.engine.dispose()

    def job_context(self, queue: Queue, max_tries: int = DEFAULT_MAX_TRIES) -> JobContext:
        """A fresh ctx for the worker of ``queue`` (each worker needs its own dict: arq writes into it)."""
        return {
            RESOURCES_KEY: self,
            "settings": self.settings,
            "engine": self.engine,
            "session_factory": self.session_factory,
            "redis_client": self.redis,
            QUEUE_KEY: queue,
            MAX_TRIES_KEY: max_tries,
        }


def get_resources(ctx: JobContext) -> WorkerResources:
    """The typed resources of a job's ctx."""
    resources = ctx.get(RESOURCES_KEY)
    if not isinstance(resources, WorkerResources):
        raise RuntimeError(
            "worker resources missing from the job context (worker not started by prosaas_worker)"
        )
    return resources


def current_try(ctx: JobContext) -> int:
    """The 1-based try of the running job (arq counts tries in Redis, across worker processes)."""
    value = ctx.get("job_try")
    return value if isinstance(value, int) and value > 0 else 1


def job_queue(ctx: JobContext) -> Queue | None:
    queue = ctx.get(QUEUE_KEY)
    return queue if isinstance(queue, Queue) else None


def job_pool(ctx: JobContext) -> Callable[[], Awaitable[ArqRedis]]:
    """arq's own connection of this worker as a pool getter, for code that enqueues after its commit
    (domain events, e-mail deliveries, webhook rounds)."""

    async def pool() -> ArqRedis:
        redis: ArqRedis = ctx["redis"]
        return redis

    return pool
