"""Recognise DNS failures and plan their retries without sleeping.

Inside containers a service name can fail to resolve for a while (the peer is being recreated, the
embedded resolver is slow). Such failures are retried on a graduated schedule — the first attempt is
immediate, then 30 s, 60 s and 120 s (and 120 s from then on). :class:`DnsBackoff` only says *when* to
retry; a job turns that into ``Retry(defer=...)`` and a loop into its own wait.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prosaas_common.logging import RepeatedFailureLog, get_logger

DNS_ERROR_MARKERS = (
    "could not translate host name",
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname provided",
    "no address associated with hostname",
    "getaddrinfo failed",
)
# Waits before attempts 2, 3, 4, …; the last one repeats.
DEFAULT_SCHEDULE: tuple[float, ...] = (30.0, 60.0, 120.0)

log = get_logger("prosaas.dns")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and the members of exception groups, each once."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)


def is_dns_error(exc: BaseException) -> bool:
    """True for a name-resolution failure, bare or wrapped by asyncpg, redis, httpx or the like."""
    for item in _chain(exc):
        if isinstance(item, socket.gaierror):
            return True
        text = " ".join(str(arg) for arg in item.args).lower() if item.args else str(item).lower()
        if any(marker in text for marker in DNS_ERROR_MARKERS):
            return True
    return False


@dataclass(frozen=True)
class RetryPlan:
    """When to try a failing target again."""

    target: str
    failures: int
    delay_s: float
    retry_at: float


class DnsBackoff:
    """Graduated retry schedule per target (host, service or job key), driven by an injectable clock."""

    def __init__(
        self,
        schedule: tuple[float, ...] = DEFAULT_SCHEDULE,
        clock: Callable[[], float] = time.monotonic,
        failure_log: RepeatedFailureLog | None = None,
    ) -> None:
        if not schedule:
            raise ValueError("schedule needs at least one delay")
        self._schedule = schedule
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._log = failure_log or RepeatedFailureLog(log)

    def failures(self, target: str) -> int:
        return self._failures.get(target, 0)

    def delay_for(self, failures: int) -> float:
        """Wait before the next attempt after ``failures`` consecutive failures (0 → immediate)."""
        if failures <= 0:
            return 0.0
        return self._schedule[min(failures, len(self._schedule)) - 1]

    def record_failure(self, target: str, exc: BaseException | None = None) -> RetryPlan:
        failures = self._failures.get(target, 0) + 1
        self._failures[target] = failures
        delay = self.delay_for(failures)
        self._log.failure(
            f"dns:{target}",
            "dns.resolution_failed",
            target=target,
            retry_in_s=delay,
            error=f"{type(exc).__name__}: {exc}" if exc is not None else None,
        )
        return RetryPlan(target=target, failures=failures, delay_s=delay, retry_at=self._clock() + delay)

    def record_success(self, target: str) -> None:
        if self._failures.pop(target, 0):
            self._log.recovered(f"dns:{target}", "dns.resolution_recovered", target=target)

    def is_due(self, plan: RetryPlan) -> bool:
        """Whether a planned retry may run now."""
        return self._clock() >= plan.retry_at
