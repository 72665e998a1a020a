"""DNS failures inside jobs become arq.Retry with the graduated defer; anything else passes through."""

from __future__ import annotations

import socket

import pytest
from arq import Retry

from prosaas_worker.context import JobContext
from prosaas_worker.retry import DnsRetry, dns_retry_plan, retry_dns_errors, retry_on_dns_error


def wrapped_dns_error() -> ConnectionError:
    try:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    except socket.gaierror as exc:
        error = ConnectionError("cannot reach the gateway")
        error.__cause__ = exc
        return error


@pytest.mark.parametrize(("job_try", "delay"), [(1, 30.0), (2, 60.0), (3, 120.0), (4, 120.0), (9, 120.0)])
def test_plan_follows_the_dns_schedule_by_job_try(job_try: int, delay: float) -> None:
    plan = dns_retry_plan(job_try, "smtp")
    assert plan.delay_s == delay
    assert plan.failures == job_try
    assert plan.target == "smtp"


@pytest.mark.parametrize(("job_try", "defer_ms"), [(1, 30_000), (2, 60_000), (3, 120_000)])
def test_wrapped_dns_error_becomes_retry_with_defer(job_try: int, defer_ms: int) -> None:
    error = wrapped_dns_error()
    with pytest.raises(DnsRetry) as caught, retry_on_dns_error({"job_try": job_try}, "gateway"):
        raise error
    retry = caught.value
    assert isinstance(retry, Retry)
    assert retry.defer_score == defer_ms
    assert retry.error is error
    assert retry.__cause__ is error
    assert retry.plan.target == "gateway"


def test_dns_error_recognised_by_message() -> None:
    with pytest.raises(DnsRetry), retry_on_dns_error({"job_try": 1}):
        raise OSError('could not translate host name "db" to address')


def test_other_errors_are_not_turned_into_retry() -> None:
    error = ConnectionRefusedError(111, "Connection refused")
    with pytest.raises(ConnectionRefusedError) as caught, retry_on_dns_error({"job_try": 1}):
        raise error
    assert caught.value is error
    assert not isinstance(caught.value, Retry)


def test_an_explicit_retry_passes_unchanged() -> None:
    retry = Retry(defer=5)
    with pytest.raises(Retry) as caught, retry_on_dns_error({"job_try": 1}):
        raise retry
    assert caught.value is retry


def test_missing_job_try_counts_as_the_first() -> None:
    with pytest.raises(DnsRetry) as caught, retry_on_dns_error({}):
        raise wrapped_dns_error()
    assert caught.value.defer_score == 30_000


async def test_decorator_with_and_without_target() -> None:
    @retry_dns_errors
    async def plain(ctx: JobContext, value: int) -> int:
        if value < 0:
            raise wrapped_dns_error()
        return value * 2

    @retry_dns_errors("twilio")
    async def named(ctx: JobContext) -> None:
        raise wrapped_dns_error()

    @retry_dns_errors("twilio")
    async def other(ctx: JobContext) -> None:
        raise KeyError("nope")

    assert plain.__name__ == "plain"
    assert await plain({"job_try": 1}, 21) == 42
    with pytest.raises(DnsRetry) as caught:
        await plain({"job_try": 2}, -1)
    assert caught.value.defer_score == 60_000
    assert caught.value.plan.target == "dns"
    with pytest.raises(DnsRetry) as caught:
        await named({"job_try": 1})
    assert caught.value.plan.target == "twilio"
    with pytest.raises(KeyError):
        await other({"job_try": 1})
