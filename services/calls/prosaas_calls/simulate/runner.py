"""Running simulated calls: one, or many at once (each its own script run, started together or ramped)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from prosaas_calls.simulate.caller import CallResult, SimulatedCall, Target
from prosaas_calls.simulate.script import Step, run_script


@dataclass(frozen=True)
class Plan:
    steps: Sequence[Step]
    audio: dict[Step, bytes]
    record: bool = False
    turn_timeout: float = 30.0
    post_status: bool = True


async def one_call(target: Target, http: httpx.AsyncClient, plan: Plan, delay: float = 0.0) -> CallResult:
    """Dial, stream and play the script; a failure ends this call only and is reported in ``ended_by``."""
    if delay:
        await asyncio.sleep(delay)
    call = SimulatedCall(target, http, record=plan.record)
    streamed = False
    try:
        order = await call.dial()
        if order.url is None:
            return call.result
        await call.open_stream(order)
        streamed = True
        await run_script(call, plan.steps, plan.audio, turn_timeout=plan.turn_timeout)
    except Exception as exc:  # one broken call must not hide the others' figures
        call.result.ended_by = f"error: {type(exc).__name__}: {str(exc)[:200]}"
    return await call.finish(post_status=plan.post_status and streamed)


async def run_calls(target: Target, plan: Plan, calls: int = 1, ramp_s: float = 0.0) -> list[CallResult]:
    """``calls`` concurrent calls, started over ``ramp_s`` seconds (0: all at once)."""
    limits = httpx.Limits(max_connections=max(10, calls), max_keepalive_connections=max(10, calls))
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        step = ramp_s / calls if calls else 0.0
        return list(await asyncio.gather(*(one_call(target, http, plan, i * step) for i in range(calls))))
