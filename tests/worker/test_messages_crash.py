"""Reliability: a worker killed (SIGKILL) in the middle of a batch of messages, then started again,
delivers every message to the SMS provider exactly once — the provider (a local Twilio Messaging API in
its own process) sees no duplicate and no gap."""

from __future__ import annotations

import signal
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from arq.connections import ArqRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import JobName, Queue, enqueue
from prosaas_common.models import MessageStatus, OutboundMessage
from tests.support import free_port, service_env, start_process, stop_process, wait_for_http, wait_until
from tests.worker.messaging_support import ACCOUNT_SID, AUTH_TOKEN, MakeWorker, add_messages, make_shop
from tests.worker.procs import ProcessOutput, worker_env

COUNT = 400


async def count_by_status(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)
        )
        return {status: count for status, count in rows.all()}


async def test_a_killed_worker_sends_each_message_exactly_once_after_restart(
    make_worker: MakeWorker, db_engine: AsyncEngine, pool: ArqRedis, redis_url: str, database_url: str
) -> None:
    port = free_port()
    fake = start_process(
        [
            "-m",
            "tests.fakes.twilio_messages",
            "--port",
            str(port),
            "--account-sid",
            ACCOUNT_SID,
            "--auth-token",
            AUTH_TOKEN,
        ],
        service_env(),
    )
    base = f"http://127.0.0.1:{port}"
    env = worker_env(
        redis_url,
        database_url,
        worker_queues="default",
        twilio_api_base_url=base,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        messages_batch_size="100",
        messages_send_concurrency="10",
        messages_in_doubt_after_s="1",
    )
    workers: list[ProcessOutput] = []
    try:
        wait_for_http(f"{base}/_fake/messages")
        async with httpx.AsyncClient(base_url=base) as fake_api:
            await fake_api.post("/_fake/config", json={"delay_ms": 40})
            shop = await make_shop(make_worker())
            await add_messages(db_engine, shop, COUNT, datetime.now(UTC) - timedelta(seconds=1))

            async def provider_count() -> int:
                return len((await fake_api.get("/_fake/messages")).json())

            async def wake() -> None:
                await enqueue(
                    pool, JobName.MESSAGES_SEND_DUE, queue=Queue.DEFAULT, job_id=f"wake:{uuid.uuid4()}"
                )

            first = ProcessOutput(start_process(["-m", "prosaas_worker", "run"], env))
            workers.append(first)
            await first.wait_for_event("worker.started", timeout=30)
            await wake()

            async def mid_batch() -> bool:
                return await provider_count() >= 130  # past the first batch, inside the second

            await wait_until(mid_batch, timeout=60)
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(10)
            stranded = (await count_by_status(db_engine)).get(MessageStatus.SENDING.value, 0)
            assert stranded > 0, "the kill should leave messages in flight"
            assert await provider_count() < COUNT

            second = ProcessOutput(start_process(["-m", "prosaas_worker", "run"], env))
            workers.append(second)
            await second.wait_for_event("worker.started", timeout=30)

            async def all_sent() -> bool:
                counts = await count_by_status(db_engine)
                if counts.get(MessageStatus.SENT.value, 0) == COUNT:
                    return True
                await wake()
                return False

            await wait_until(all_sent, timeout=90, interval=1.0)
            bodies = [m["body"] for m in (await fake_api.get("/_fake/messages")).json()]

        assert len(bodies) == COUNT, f"{len(bodies) - len(set(bodies))} duplicates"
        assert sorted(set(bodies)) == sorted(f"msg {i}" for i in range(COUNT))
        assert second.events("messages.in_doubt_settled"), second.text()[-3000:]
    finally:
        for worker in workers:
            stop_process(worker.proc)
        stop_process(fake)
