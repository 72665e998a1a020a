"""Readiness checks: timeouts, error text, and coalescing so probe floods cost one check."""

from __future__ import annotations

import asyncio

from prosaas_common.health import CoalescedReadiness, check_readiness


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingCheck:
    """A dependency check that counts its runs and can be held open."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> object:
        self.runs += 1
        await self.release.wait()
        return 1


async def failing() -> object:
    raise ConnectionRefusedError(111, "Connect call failed")


async def hanging() -> object:
    await asyncio.Event().wait()
    return None


async def test_each_dependency_is_reported_with_its_error() -> None:
    report = await check_readiness({"db": failing, "cache": CountingCheck()}, timeout=0.5)
    assert not report.ready
    body = report.as_dict()
    assert body["status"] == "not_ready"
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["db"]["ok"] is False
    assert checks["db"]["error"].startswith("ConnectionRefusedError")
    assert checks["cache"] == {"ok": True, "latency_ms": checks["cache"]["latency_ms"], "error": None}


async def test_a_hanging_dependency_times_out_without_delaying_the_others() -> None:
    report = await check_readiness({"db": hanging, "cache": CountingCheck()}, timeout=0.05)
    statuses = {c.name: (c.ok, c.error) for c in report.checks}
    assert statuses == {"db": (False, "timed out"), "cache": (True, None)}


async def test_concurrent_probes_share_one_check() -> None:
    check = CountingCheck()
    check.release.clear()
    readiness = CoalescedReadiness({"db": check}, timeout=1, max_age=0, clock=FakeClock())
    waiters = [asyncio.create_task(readiness.check()) for _ in range(50)]
    await asyncio.sleep(0)
    check.release.set()
    results = await asyncio.gather(*waiters)
    assert check.runs == 1
    assert all(r.ready for r in results)


async def test_a_result_is_reused_until_it_is_max_age_old() -> None:
    clock = FakeClock()
    check = CountingCheck()
    readiness = CoalescedReadiness({"db": check}, timeout=1, max_age=1.0, clock=clock)
    await readiness.check()
    clock.now = 0.99
    await readiness.check()
    assert check.runs == 1
    clock.now = 1.0
    await readiness.check()
    assert check.runs == 2


async def test_a_caller_that_goes_away_does_not_cancel_the_shared_check() -> None:
    check = CountingCheck()
    check.release.clear()
    readiness = CoalescedReadiness({"db": check}, timeout=1, max_age=0, clock=FakeClock())
    impatient = asyncio.create_task(readiness.check())
    patient = asyncio.create_task(readiness.check())
    await asyncio.sleep(0)
    impatient.cancel()
    check.release.set()
    assert (await patient).ready
    assert check.runs == 1
