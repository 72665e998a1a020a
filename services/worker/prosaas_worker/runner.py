"""Run one arq worker per served queue in one process and one event loop.

arq's :class:`~arq.worker.Worker` serves a single queue, so a process serving ``high,default,low``
runs three of them side by side, sharing the process resources (:mod:`prosaas_worker.context`).
Signals are ours (``handle_signals=False``): on SIGTERM/SIGINT every worker stops picking jobs, the
running jobs get ``WORKER_SHUTDOWN_GRACE`` seconds to finish (a second signal cuts the wait short),
whatever still runs is cancelled (arq puts it back on its queue), then every worker is closed — which
deletes its health key — and the shared resources are disposed.

``arq prosaas_worker.runner.WorkerSettings`` also works: a single worker on the default queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Sequence
from typing import Any

from arq.worker import Worker

from prosaas_common.jobs import Queue
from prosaas_common.logging import configure_from_settings, get_logger
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

    def running_jobs(self) -> int:
        return sum(not t.done() for w in self.workers.values() for t in w.tasks.values())

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
                worker = Worker(
                    functions,
                    handle_signals=False,
                    ctx=resources.job_context(queue),
                    **worker_options(self.settings, queue),
                )
                worker.main_task = asyncio.create_task(worker.main(), name=f"arq-worker:{queue.short_name}")
                self.workers[queue] = worker
                mains.append(worker.main_task)
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
        workers = list(self.workers.values())
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
