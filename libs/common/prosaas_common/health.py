"""Dependency checks for readiness probes: each with a short timeout and a readable error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

Check = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class DependencyStatus:
    name: str
    ok: bool
    latency_ms: float
    error: str | None = None


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: list[DependencyStatus] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ready else "not_ready",
            "checks": {c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in self.checks},
        }


def postgres_check(engine: AsyncEngine) -> Check:
    async def check() -> object:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT 1"))).scalar_one()

    return check


def redis_check(client: Redis) -> Check:
    async def check() -> object:
        return await client.ping()

    return check


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    original = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's exception
    if isinstance(original, BaseException):
        exc = original
    message = (str(exc).strip().splitlines() or [""])[0] or type(exc).__name__
    return f"{type(exc).__name__}: {message}"[:300]


async def _run_one(name: str, check: Check, timeout: float) -> DependencyStatus:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            await check()
    except Exception as exc:
        return DependencyStatus(name, False, round((time.perf_counter() - started) * 1000, 1), _describe(exc))
    return DependencyStatus(name, True, round((time.perf_counter() - started) * 1000, 1))


async def check_readiness(checks: Mapping[str, Check], timeout: float) -> Readiness:
    """Run every check concurrently, each bounded by ``timeout`` seconds."""
    results = await asyncio.gather(*(_run_one(name, check, timeout) for name, check in checks.items()))
    return Readiness(ready=all(r.ok for r in results), checks=list(results))


class CoalescedReadiness:
    """Readiness that costs the dependencies at most one check per ``max_age`` seconds.

    Concurrent callers share the one check in flight (single flight), and a finished result is reused
    until it is ``max_age`` old, so a flood of probes cannot tie up the database pool that real
    requests need. ``max_age=0`` still coalesces concurrent callers but never reuses a result.
    """

    def __init__(
        self,
        checks: Mapping[str, Check],
        timeout: float,
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checks = checks
        self._timeout = timeout
        self._max_age = max_age
        self._clock = clock
        self._last: tuple[float, Readiness] | None = None
        self._in_flight: asyncio.Future[Readiness] | None = None

    async def check(self) -> Readiness:
        if self._last is not None and self._clock() - self._last[0] < self._max_age:
            return self._last[1]
        if self._in_flight is None:
            self._in_flight = asyncio.ensure_future(self._run())
        # shield: a caller that goes away (client disconnect) does not cancel the others' check
        return await asyncio.shield(self._in_flight)

    async def _run(self) -> Readiness:
        try:
            result = await check_readiness(self._checks, self._timeout)
            self._last = (self._clock(), result)
            return result
        finally:
            self._in_flight = None
