"""DNS failures inside jobs become ``arq.Retry(defer=…)``: a job never sleeps for backoff.

The delay comes from :class:`prosaas_common.dns.DnsBackoff`'s schedule indexed by ``job_try`` (kept by
arq in Redis, so it holds across worker processes): try 1 failed → 30 s, try 2 → 60 s, then 120 s.

Every registered job already runs under this policy (:mod:`prosaas_worker.instrument`, with the job
name as target). Use the context manager or the decorator to name the unreachable target in the log::

    async def send_sms(ctx, sms_id):
        with retry_on_dns_error(ctx, "twilio"):
            await twilio.send(...)

    @retry_dns_errors("smtp")
    async def send_email(ctx, email_id): ...
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

from arq import Retry

from prosaas_common.dns import DnsBackoff, RetryPlan, is_dns_error
from prosaas_worker.context import JobContext, current_try

P = ParamSpec("P")
R = TypeVar("R")
JobCallable = Callable[Concatenate[JobContext, P], Coroutine[Any, Any, R]]

DEFAULT_TARGET = "dns"
# Only the schedule is used: the failure count is the job's try, not per-process state.
_BACKOFF = DnsBackoff(clock=time.time)


class DnsRetry(Retry):
    """A Retry caused by a name-resolution failure; keeps the plan and the error for the job log."""

    def __init__(self, plan: RetryPlan, error: BaseException) -> None:
        super().__init__(defer=plan.delay_s)
        self.plan = plan
        self.error = error


class RetriesExhausted(RuntimeError):
    """A job asked for a retry on its last allowed try; recorded by arq as the job's failure."""


def dns_retry_plan(job_try: int, target: str = DEFAULT_TARGET) -> RetryPlan:
    """When to run a job again after its try ``job_try`` (1-based) failed to resolve ``target``."""
    delay = _BACKOFF.delay_for(max(job_try, 1))
    return RetryPlan(target=target, failures=job_try, delay_s=delay, retry_at=time.time() + delay)


@contextmanager
def retry_on_dns_error(ctx: JobContext, target: str = DEFAULT_TARGET) -> Iterator[None]:
    """Turn a DNS failure raised in the block (bare or wrapped) into :class:`DnsRetry`; others pass."""
    try:
        yield
    except Retry:
        raise
    except Exception as exc:
        if not is_dns_error(exc):
            raise
        raise DnsRetry(dns_retry_plan(current_try(ctx), target), exc) from exc


@overload
def retry_dns_errors(target: JobCallable[P, R], /) -> JobCallable[P, R]: ...


@overload
def retry_dns_errors(target: str = DEFAULT_TARGET, /) -> Callable[[JobCallable[P, R]], JobCallable[P, R]]: ...


def retry_dns_errors(
    target: str | JobCallable[P, R] = DEFAULT_TARGET, /
) -> JobCallable[P, R] | Callable[[JobCallable[P, R]], JobCallable[P, R]]:
    """Decorator form of :func:`retry_on_dns_error`: ``@retry_dns_errors`` or ``@retry_dns_errors("x")``."""

    def decorate(job: JobCallable[P, R], name: str) -> JobCallable[P, R]:
        @functools.wraps(job)
        async def wrapper(ctx: JobContext, /, *args: P.args, **kwargs: P.kwargs) -> R:
            with retry_on_dns_error(ctx, name):
                return await job(ctx, *args, **kwargs)

        return wrapper

    if callable(target):
        return decorate(target, DEFAULT_TARGET)
    return lambda job: decorate(job, target)
