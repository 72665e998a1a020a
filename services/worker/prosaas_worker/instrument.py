"""Job logging and the DNS policy around every registered job.

* ``on_job_start`` / ``on_job_end`` (arq hooks) bind ``job_id``, ``job_try`` and ``queue`` in the task
  that runs the job; arq creates the job's own task after ``on_job_start``, so the job inherits them.
* :func:`instrument` wraps every registered job. It binds ``job`` (the function name, which the hooks
  cannot see) and applies the DNS policy (:func:`~prosaas_worker.retry.retry_on_dns_error` with the
  job name as target), so a DNS failure anywhere in any job is deferred, never failed or slept on.
* Events: ``job.started`` / ``job.succeeded`` (DEBUG), ``job.retrying`` (INFO on the first try,
  WARNING later), ``job.cancelled`` (WARNING) and ``job.failed`` (ERROR, only for a real failure: an
  error, or a retry asked on the last allowed try — turned at once into :class:`RetriesExhausted`
  instead of waiting for arq to refuse the next try). Either way the job is recorded in
  ``dead_letters`` (:mod:`prosaas_worker.dead_letters`).
* arq logs every failure again at ERROR; :class:`SkipLoggedFailures` drops those duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate

import structlog
from arq import Retry
from arq.typing import WorkerCoroutine

from prosaas_common.logging import bind_context, get_logger
from prosaas_worker.context import DEFAULT_MAX_TRIES, MAX_TRIES_KEY, JobContext, current_try, job_queue
from prosaas_worker.dead_letters import record_dead_letter
from prosaas_worker.retry import DnsRetry, RetriesExhausted, retry_on_dns_error

JobFunction = Callable[Concatenate[JobContext, ...], Coroutine[Any, Any, Any]]

CONTEXT_KEYS = ("job_id", "job_try", "queue", "job")
_LOGGED_MARK = "_prosaas_job_failure_logged"

log = get_logger("prosaas.worker.jobs")


async def on_job_start(ctx: JobContext) -> None:
    fields: dict[str, Any] = {"job_id": ctx.get("job_id"), "job_try": ctx.get("job_try")}
    queue = job_queue(ctx)
    if queue is not None:
        fields["queue"] = queue.short_name
    bind_context(**fields)


async def on_job_end(ctx: JobContext) -> None:
    structlog.contextvars.unbind_contextvars(*CONTEXT_KEYS)


def describe(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}"[:300] if message else type(exc).__name__


def _mark_logged(exc: BaseException) -> None:
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, _LOGGED_MARK, True)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def instrument(name: str, job: JobFunction, max_tries: int | None = None) -> WorkerCoroutine:
    """Wrap ``job`` with its context binding and outcome events (see the module docstring)."""

    @functools.wraps(job)
    async def run(ctx: JobContext, *args: Any, **kwargs: Any) -> Any:
        job_try = current_try(ctx)
        limit = max_tries or int(ctx.get(MAX_TRIES_KEY, DEFAULT_MAX_TRIES))
        bind_context(job=name, job_id=ctx.get("job_id"), job_try=job_try)
        started = time.perf_counter()
        log.debug("job.started")
        try:
            with retry_on_dns_error(ctx, name):
                result = await job(ctx, *args, **kwargs)
        except Retry as exc:
            cause = exc.error if isinstance(exc, DnsRetry) else exc.__cause__
            reason = "dns" if isinstance(exc, DnsRetry) else "retry"
            if job_try >= limit:
                log.error(
                    "job.failed",
                    reason="retries_exhausted",
                    retry_reason=reason,
                    tries=job_try,
                    error=describe(cause),
                    duration_ms=_elapsed_ms(started),
                    exc_info=cause,
                )
                failure = RetriesExhausted(f"{name} gave up after {job_try} tries: {describe(cause or exc)}")
                _mark_logged(failure)
                await record_dead_letter(ctx, name, args, kwargs, job_try, str(failure))
                raise failure from cause or exc
            log.log(
                logging.INFO if job_try == 1 else logging.WARNING,
                "job.retrying",
                reason=reason,
                target=exc.plan.target if isinstance(exc, DnsRetry) else None,
                defer_s=(exc.defer_score or 0) / 1000,
                error=describe(cause),
                duration_ms=_elapsed_ms(started),
            )
            raise
        except asyncio.CancelledError:
            # Shutdown after the grace (arq runs the job again) or the job timeout (arq logs the failure).
            log.warning("job.cancelled", duration_ms=_elapsed_ms(started))
            raise
        except Exception as exc:
            log.error(
                "job.failed",
                reason="error",
                error=describe(exc),
                duration_ms=_elapsed_ms(started),
                exc_info=exc,
            )
            _mark_logged(exc)
            await record_dead_letter(ctx, name, args, kwargs, job_try, describe(exc) or type(exc).__name__)
            raise
        log.debug("job.succeeded", duration_ms=_elapsed_ms(started))
        return result

    return run


class SkipLoggedFailures(logging.Filter):
    """Drop arq's own ERROR record for a failure that :func:`instrument` already logged as ``job.failed``."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and getattr(exc, _LOGGED_MARK, False))


def install_log_filter() -> None:
    arq_logger = logging.getLogger("arq.worker")
    if not any(isinstance(f, SkipLoggedFailures) for f in arq_logger.filters):
        arq_logger.addFilter(SkipLoggedFailures())
