"""DNS failure classification (on the real exceptions the drivers raise) and the retry schedule."""

from __future__ import annotations

import socket

import asyncpg
import httpx
import pytest
import structlog
from redis.asyncio import Redis

from prosaas_common.dns import DnsBackoff, is_dns_error
from prosaas_common.logging import RepeatedFailureLog

UNRESOLVABLE = "prosaas-no-such-host.invalid"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def failure_of(coro: object) -> BaseException:
    try:
        await coro  # type: ignore[misc]
    except Exception as exc:
        return exc
    raise AssertionError("expected a failure")


async def test_asyncpg_dns_failure_is_classified() -> None:
    exc = await failure_of(asyncpg.connect(f"postgresql://u@{UNRESOLVABLE}/db", timeout=5))
    assert is_dns_error(exc)


async def test_redis_wrapped_dns_failure_is_classified() -> None:
    client = Redis.from_url(f"redis://{UNRESOLVABLE}:6379", socket_connect_timeout=5)
    exc = await failure_of(client.ping())
    await client.aclose()
    assert not isinstance(exc, socket.gaierror)
    assert is_dns_error(exc)


async def test_httpx_wrapped_dns_failure_is_classified() -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        exc = await failure_of(client.get(f"http://{UNRESOLVABLE}/"))
    assert isinstance(exc, httpx.ConnectError)
    assert is_dns_error(exc)


@pytest.mark.parametrize(
    "message",
    [
        'could not translate host name "db" to address: Name or service not known',
        "Error -3 connecting to redis:6379. Temporary failure in name resolution.",
        "[Errno -2] Name or service not known",
    ],
)
def test_messages_of_wrapped_forms_are_classified(message: str) -> None:
    assert is_dns_error(OSError(message))
    wrapped = RuntimeError("job failed")
    wrapped.__cause__ = OSError(message)
    assert is_dns_error(wrapped)


def test_exception_groups_are_searched() -> None:
    group = ExceptionGroup("many", [ValueError("x"), socket.gaierror(-3, "Temporary failure")])
    assert is_dns_error(group)


async def test_refused_connection_is_not_dns() -> None:
    exc = await failure_of(asyncpg.connect("postgresql://u@127.0.0.1:1/db", timeout=5))
    assert not is_dns_error(exc)
    assert not is_dns_error(TimeoutError())
    assert not is_dns_error(ValueError("hostname is fine"))


def test_schedule_is_immediate_then_30_60_120_and_stays_at_120() -> None:
    backoff = DnsBackoff(clock=FakeClock())
    assert backoff.delay_for(0) == 0
    plans = [backoff.record_failure("redis") for _ in range(5)]
    assert [p.delay_s for p in plans] == [30, 60, 120, 120, 120]
    assert [p.failures for p in plans] == [1, 2, 3, 4, 5]


def test_retry_time_comes_from_the_clock_and_becomes_due() -> None:
    clock = FakeClock()
    backoff = DnsBackoff(clock=clock)
    plan = backoff.record_failure("db")
    assert plan.retry_at == 1030.0
    clock.now = 1029.9
    assert not backoff.is_due(plan)
    clock.now = 1030.0
    assert backoff.is_due(plan)


def test_success_resets_the_schedule_per_target() -> None:
    backoff = DnsBackoff(clock=FakeClock())
    backoff.record_failure("db")
    backoff.record_failure("db")
    backoff.record_failure("redis")
    backoff.record_success("db")
    assert backoff.failures("db") == 0
    assert backoff.record_failure("db").delay_s == 30
    assert backoff.record_failure("redis").delay_s == 60


def test_failures_follow_the_log_policy() -> None:
    with structlog.testing.capture_logs() as captured:
        backoff = DnsBackoff(clock=FakeClock(), failure_log=RepeatedFailureLog(structlog.get_logger("dns")))
        for _ in range(10):
            backoff.record_failure("db", socket.gaierror(-2, "Name or service not known"))
        backoff.record_success("db")
    assert [(e["event"], e["log_level"]) for e in captured] == [
        ("dns.resolution_failed", "warning"),
        ("dns.resolution_failed", "debug"),
        ("dns.resolution_failed", "debug"),
        ("dns.resolution_recovered", "info"),
    ]
    assert captured[0]["retry_in_s"] == 30
    assert "gaierror" in captured[0]["error"]
