"""Run one arq worker per served queue in one process and one event loop.

arq's :class:`~arq.worker.Worker` serves a single queue, so a process serving ``high,default,low``
runs three of them side by side, sharing the process resources (:mod:`prosaas_worker.context`).
Signals are ours (``handle_signals=False``): on SIGTERM/SIGINT every worker stops picking jobs, the
running jobs get ``WORKER_SHUTDOWN_GRACE`` seconds to finish (a second signal cuts the wait short),
whatever still runs is cancelled (arq puts it back on its queue), then every worker is closed — which
deletes its health key — and the shared resources are disposed.

A Redis outage (a restart, a failover) does not end the process: an arq worker whose connection broke is
replaced, once Redis answers PING again, by a fresh one on the same connection pool (``worker.redis_*``
events, the outage logged once at WARNING and its end once at INFO). Any other crash still exits 1.

``arq prosaas_worker.runner.WorkerSettings`` also works: a single worker on the default queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Sequence
from typing import Any

from arq.connections import ArqRedis
from arq.worker import Function, Worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from prosaas_common.jobs import Queue
from prosaas_common.logging import RepeatedFailureLog, configure_from_settings, get_logger
from prosaas_common.redis import arq_redis_settings
from prosaas_worker.context import (
    DEFAULT_MAX_TRIES,
    RESOURCES_KEY,
    JobContext,
    WorkerResources,
    get_resources,
)
from prosaas_worker.health import health_key
from prosaas_worker.instrument import install_log_filter, on_job_end, on_job_start
from prosaas_worker.jobs import ALL_JOBS
from prosaas_worker.registry import JobSpec, arq_functions
from prosaas_worker.settings import WorkerConfig, load_worker_config

KEEP_RESULT_S = 3600
POLL_DELAY_S = 0.5
_DRAIN_POLL_S = 0.1
# After a Redis outage: PING every 0.5 s, doubling to 5 s, before a fresh worker starts; a worker that
# ran this long before its connection broke starts the backoff from the beginning again.
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 5.0
RECONNECT_STABLE_S = 30.0
PING_TIMEOUT_S = 2.0
# Errors (anywhere in an exception's chain) that mean Redis is unreachable, not that our code is wrong.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    TimeoutError,
)

log = get_logger("prosaas.worker")


def worker_options(settings: WorkerConfig, queue: Queue) -> dict[str, Any]:
    """Keyword arguments of an arq Worker for ``queue``; its health key names this process's instance."""
    return {
        "queue_name": queue.value,
        "redis_settings": arq_redis_settings(settings.redis_url),
        "max_jobs": settings.worker_max_jobs,
        "job_timeout": settings.worker_job_timeout,
        "keep_result": KEEP_RESULT_S,
        "poll_delay": POLL_DELAY_S,
        "max_tries": DEFAULT_MAX_TRIES,
        "health_check_interval": settings.worker_health_interval,
        "health_check_key": health_key(queue, settings.worker_instance_id),
        "on_job_start": on_job_start,
        "on_job_end": on_job_end,
    }


def is_redis_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a lost or refused Redis connection."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OUTAGE_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class WorkerGroup:
    """The workers of one process, one per queue, run until :meth:`request_stop` or a signal."""

    def __init__(
        self,
        settings: WorkerConfig,
        *,
        queues: Sequence[Queue] | None = None,
        jobs: Sequence[JobSpec] = ALL_JOBS,
        resources: WorkerResources | None = None,
    ) -> None:
        self.settings = settings
        self.queues = list(queues if queues is not None else settings.worker_queues)
        self.jobs = list(jobs)
        self.workers: dict[Queue, Worker] = {}
        # Workers replaced after a Redis outage whose jobs may still be running (drained on stop).
        self._retired: list[Worker] = []
        self._failures = RepeatedFailureLog(log)
        self._resources = resources
        self._owns_resources = resources is None
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._stop_reason = "requested"

    def request_stop(self, reason: str = "requested") -> None:
        """Begin a graceful stop; a second request skips the rest of the grace period."""
        if self._stop.is_set():
            self._force.set()
            return
        self._stop_reason = reason
        self._stop.set()

    def _all_workers(self) -> list[Worker]:
        return [*self._retired, *self.workers.values()]

    def running_jobs(self) -> int:
        return sum(not t.done() for w in self._all_workers() for t in w.tasks.values())

    def _new_worker(
        self, queue: Queue, functions: list[Function], resources: WorkerResources, pool: ArqRedis | None
    ) -> Worker:
        return Worker(
            functions,
            handle_signals=False,
            ctx=resources.job_context(queue),
            redis_pool=pool,
            **worker_options(self.settings, queue),
        )

    async def _serve(
        self, queue: Queue, worker: Worker, functions: list[Function], resources: WorkerResources
    ) -> None:
        """Run the arq worker of ``queue``; after a Redis outage, wait for Redis and run a fresh one."""
        loop = asyncio.get_running_loop()
        delay = RECONNECT_MIN_S
        while True:
            started = loop.time()
            try:
                await worker.main()
                return
            except Exception as exc:
                if not is_redis_outage(exc) or self._stop.is_set():
                    raise
                self._failures.failure(
                    "redis", "worker.redis_unavailable", queue=queue.short_name, error=_describe(exc)
                )
            if loop.time() - started >= RECONNECT_STABLE_S:
                delay = RECONNECT_MIN_S
            self._retire(worker)
            # arq's pool reconnects by itself once Redis is back; None if the worker never connected.
            pool: ArqRedis | None = worker.pool
            delay = await self._await_redis(queue, pool, delay)
            if self._stop.is_set():
                return
            self._failures.recovered("redis", "worker.redis_recovered", queue=queue.short_name)
            worker = self._new_worker(queue, functions, resources, pool)
            self.workers[queue] = worker

    async def _await_redis(self, queue: Queue, pool: ArqRedis | None, delay: float) -> float:
        """Back off, then PING until Redis answers (or the group stops); returns the next delay."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, RECONNECT_MAX_S)
            if self._stop.is_set() or pool is None:  # without a pool the next worker connects itself
                break
            try:
                async with asyncio.timeout(PING_TIMEOUT_S):
                    await pool.ping()
            except Exception as exc:
                if not is_redis_outage(exc):
                    raise
                self._failures.failure(
                    "redis", "worker.redis_unavailable", queue=queue.short_name, error=_describe(exc)
                )
            else:
                break
        return delay

    def _retire(self, worker: Worker) -> None:
        """Keep a replaced worker while its jobs run; forget retired ones whose jobs have all settled."""
        worker.allow_pick_jobs = False
        self._retired.append(worker)
        kept: list[Worker] = []
        for old in self._retired:
            if all(task.done() for task in old.tasks.values()):
                for task in old.tasks.values():
                    if not task.cancelled():
                        task.exception()  # retrieved: a job whose result could not be stored is no error here
            else:
                kept.append(old)
        self._retired = kept

    async def run(self, *, handle_signals: bool = True) -> int:
        """Serve the queues until stopped; 0 after a clean stop, 1 if a worker died."""
        if not self.queues:
            raise ValueError("a worker group needs at least one queue")
        install_log_filter()
        functions = arq_functions(self.jobs)
        resources = self._resources or WorkerResources.create(self.settings)
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop, sig.name)
        mains: list[asyncio.Task[None]] = []
        exit_code = 0
        try:
            for queue in self.queues:
                worker = self._new_worker(queue, functions, resources, None)
                self.workers[queue] = worker
                mains.append(
                    asyncio.create_task(
                        self._serve(queue, worker, functions, resources),
                        name=f"arq-worker:{queue.short_name}",
                    )
                )
            log.info(
                "worker.started",
                queues=[q.short_name for q in self.queues],
                functions=[f.name for f in functions],
                max_jobs=self.settings.worker_max_jobs,
                health_interval_s=self.settings.worker_health_interval,
            )
            stop_wait = asyncio.create_task(self._stop.wait())
            await asyncio.wait([stop_wait, *mains], return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            await asyncio.wait([stop_wait])
            for queue, task in zip(self.queues, mains, strict=True):
                if task.done() and not task.cancelled() and task.exception() is not None:
                    exit_code = 1
                    self._stop_reason = "worker crashed"
                    log.error("worker.crashed", queue=queue.short_name, exc_info=task.exception())
        finally:
            await self._shutdown(mains)
            if self._owns_resources:
                await resources.dispose()
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        return exit_code

    async def _shutdown(self, mains: list[asyncio.Task[None]]) -> None:
        workers = self._all_workers()
        for worker in workers:
            worker.allow_pick_jobs = False
        log.info("worker.stopping", reason=self._stop_reason, running_jobs=self.running_jobs())
        await self._drain()
        for task in mains:
            task.cancel()
        await asyncio.gather(*mains, return_exceptions=True)
        jobs = [t for w in workers for t in w.tasks.values()]
        cancelled = 0
        for task in jobs:
            if not task.done():
                task.cancel()
                cancelled += 1
        # arq catches the cancellation of a running job and puts the job back on its queue.
        await asyncio.gather(*jobs, return_exceptions=True)
        for worker in workers:
            worker.tasks.clear()  # settled above; close() would re-raise their outcome
        # A retired worker shares its pool and health key with its queue's current one, closed here.
        for worker in self.workers.values():
            try:
                await worker.close()  # deletes the worker's health key
            except Exception as exc:
                log.warning("worker.close_failed", queue=worker.queue_name, error=str(exc))
        log.info(
            "worker.stopped",
            jobs_complete=sum(w.jobs_complete for w in workers),
            jobs_failed=sum(w.jobs_failed for w in workers),
            jobs_retried=sum(w.jobs_retried for w in workers),
            jobs_cancelled=cancelled,
        )

    async def _drain(self) -> None:
        """Wait for running jobs to finish, at most the grace period (or until a second stop request)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.worker_shutdown_grace
        while self.running_jobs() and loop.time() < deadline and not self._force.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._force.wait(), _DRAIN_POLL_S)


async def run_workers(
    settings: WorkerConfig, *, jobs: Sequence[JobSpec] = ALL_JOBS, queues: Sequence[Queue] | None = None
) -> int:
    """The ``run`` command: serve ``settings.worker_queues`` until SIGTERM/SIGINT."""
    return await WorkerGroup(settings, queues=queues, jobs=jobs).run()


# arq CLI support -------------------------------------------------------------------------------------
def arq_worker_settings(settings: WorkerConfig, queue: Queue = Queue.DEFAULT) -> type:
    """An arq ``WorkerSettings`` class for one queue, for ``arq prosaas_worker.runner.WorkerSettings``.

    arq handles the signals there (cancelling running jobs at once); resources live in on_startup /
    on_shutdown since arq owns the loop.
    """

    async def on_startup(ctx: JobContext) -> None:
        configure_from_settings(settings, "worker")
        install_log_filter()
        ctx.update(WorkerResources.create(settings).job_context(queue))

    async def on_shutdown(ctx: JobContext) -> None:
        if RESOURCES_KEY in ctx:
            await get_resources(ctx).dispose()

    attrs: dict[str, Any] = {
        **worker_options(settings, queue),
        "functions": arq_functions(ALL_JOBS),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
    }
    return type("WorkerSettings", (), attrs)


@functools.cache
def _default_arq_settings() -> type:
    return arq_worker_settings(load_worker_config())


def __getattr__(name: str) -> Any:
    # Built on first access so importing this module never reads the environment.
    if name == "WorkerSettings":
        return _default_arq_settings()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
