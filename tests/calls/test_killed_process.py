"""A calls process killed mid-call (SIGKILL: no shutdown, no release) leaves no stuck capacity: the
call's slot holds only until its TTL runs out, then the deployment's only slot is free again."""

from __future__ import annotations

import os
import signal

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from prosaas_calls.capacity import Acquired, CallCapacity, Refused
from prosaas_calls.simulate.caller import SimulatedCall, Target
from prosaas_common.models import Business, BusinessPhoneNumber
from tests.support import free_port, service_env, start_process, stop_process, wait_for_http, wait_until

TOKEN = "killed-process-auth-token"
PUBLIC_HOST = "calls.example.com"
NUMBER = "+12125550166"
TTL_S = 2


async def business(db_engine: AsyncEngine) -> int:
    async with async_sessionmaker(db_engine).begin() as db:
        row = Business(name="Killed Calls", timezone="Europe/London", default_region="GB")
        db.add(row)
        await db.flush()
        db.add(BusinessPhoneNumber(business_id=row.id, e164=NUMBER))
        return row.id


async def test_a_killed_calls_process_frees_its_slot_after_the_ttl(
    db_engine: AsyncEngine, redis: Redis, database_url: str, redis_url: str
) -> None:
    business_id = await business(db_engine)
    port = free_port()
    env = service_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CALLS_PORT": str(port),
            "TWILIO_AUTH_TOKEN": TOKEN,
            "PUBLIC_HOST": PUBLIC_HOST,
            "MAX_CONCURRENT_CALLS": "1",
            "CALL_SLOT_TTL_S": str(TTL_S),
        }
    )
    proc = start_process(["-m", "prosaas_calls"], env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health")
        target = Target(
            base_url=f"http://127.0.0.1:{port}", public_host=PUBLIC_HOST, auth_token=TOKEN, to=NUMBER
        )
        async with httpx.AsyncClient(timeout=10) as http:
            call = SimulatedCall(target, http)
            await call.open_stream(await call.dial())  # a live call: its stream refreshes the slot
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    finally:
        stop_process(proc)

    capacity = CallCapacity(redis, platform_limit=1, ttl=TTL_S)
    right_after = await capacity.acquire("CA" + "f" * 32, business_id, 5)
    assert isinstance(right_after, Refused)  # the dead process's call still holds the only slot

    async def freed() -> bool:
        return isinstance(await capacity.acquire("CA" + "e" * 32, business_id, 5), Acquired)

    await wait_until(freed, timeout=TTL_S * 5, interval=0.2)
    assert int(await redis.get("calls:active_count") or 0) == 1  # the new call only
