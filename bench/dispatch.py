"""Benchmark ``messages.send_due``: how fast one worker hands due automation messages to the SMS provider,
and whether any is sent twice.

Creates a database ``prosaas_bench_<random>`` (dropped at the end, also on Ctrl-C), migrates it and fills
one business with ``--messages`` leads, appointments (one each, 30 minutes apart), one active "before start"
automation and, per appointment, one due message planned by it — the rows the scheduler's 30-second tick
finds. Then starts the local Twilio Messaging API (``tests/fakes/twilio_messages.py``, its own process) and
one worker process (``python -m prosaas_worker run``, default queue, LOG_LEVEL=WARNING), enqueues one
``messages.send_due`` and waits until every message is ``sent``.

It prints messages/s (first claim to last send, from the rows' timestamps, and enqueue to done as seen from
outside) and the duplicates the provider received; it never passes or fails on them.

    .venv/bin/python -m bench.dispatch --messages 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter

import asyncpg
import httpx
from arq.connections import RedisSettings, create_pool

from bench.leads_list import admin_execute, dsn, free_port, start, stop, wait_for
from prosaas_common.jobs import JobName, Queue
from prosaas_common.logging import configure_logging
from prosaas_common.migrate import run_migrations
from prosaas_common.models import DEFAULT_LEAD_STATUSES, DEFAULT_WEEKLY_HOURS
from tests.support import TEST_REDIS_URL

# A Redis database of its own (claimed like a test run's), so neither a running `make dev` worker nor a
# test run takes the bench's job.
REDIS_URL = os.environ.get("BENCH_REDIS_URL") or TEST_REDIS_URL
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"
SENDING_NUMBER = "+14155550000"


async def fill(url: str, count: int) -> str:
    await run_migrations(url, "upgrade", "head")
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            business = await conn.fetchval(
                "INSERT INTO businesses (name, timezone) "
                "VALUES ('Bench Dental', 'Europe/London') RETURNING id"
            )
            await conn.execute("INSERT INTO business_settings (business_id) VALUES ($1)", business)
            await conn.execute(
                "INSERT INTO business_phone_numbers (business_id, e164) VALUES ($1, $2)",
                business,
                SENDING_NUMBER,
            )
            key, name, color, _ = DEFAULT_LEAD_STATUSES[0]
            status = await conn.fetchval(
                "INSERT INTO lead_statuses (business_id, key, name, color, position, is_default, is_system) "
                "VALUES ($1, $2, $3, $4, 0, true, true) RETURNING id",
                business,
                key,
                name,
                color,
            )
            calendar = await conn.fetchval(
                "INSERT INTO calendars (business_id, name, is_default, weekly_hours) "
                "VALUES ($1, 'Main', true, $2::jsonb) RETURNING id",
                business,
                json.dumps(DEFAULT_WEEKLY_HOURS),
            )
            automation = await conn.fetchval(
                "INSERT INTO message_automations (business_id, name, trigger, offset_minutes, template) "
                "VALUES ($1, 'Day before', 'before_start', 1440, 'See you tomorrow') RETURNING id",
                business,
            )
            await conn.execute(
                "INSERT INTO leads (business_id, status_id, rank, first_name, last_name, phone) "
                "SELECT $1, $2, i, 'Lead', i::text, '+1415' || lpad(i::text, 7, '0') "
                "FROM generate_series(1, $3::int) i",
                business,
                status,
                count,
            )
            await conn.execute(
                "INSERT INTO appointments (business_id, calendar_id, lead_id, title, starts_at, ends_at) "
                "SELECT $1, $2, id, 'Visit', now() + interval '1 day' + rank * interval '30 minutes', "
                "now() + interval '1 day' + rank * interval '30 minutes' + interval '30 minutes' "
                "FROM leads WHERE business_id = $1",
                business,
                calendar,
            )
            await conn.execute(
                "INSERT INTO outbound_messages (business_id, dedup_key, to_number, from_number, body, "
                "send_at, lead_id, appointment_id, automation_id) "
                "SELECT $1, 'appointment:' || a.id || ':automation:' || $2::bigint, l.phone, $3, "
                "'Reminder ' || a.id || ': see you tomorrow', now() - interval '1 second', l.id, a.id, $2 "
                "FROM appointments a JOIN leads l ON l.id = a.lead_id WHERE a.business_id = $1",
                business,
                automation,
                SENDING_NUMBER,
            )
        await conn.execute("ANALYZE")
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def run(url: str, fake: str, count: int) -> dict[str, float | int]:
    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    conn = await asyncpg.connect(url)
    try:
        began = time.perf_counter()
        await pool.enqueue_job(
            JobName.MESSAGES_SEND_DUE, _queue_name=Queue.DEFAULT.value, _job_id=f"bench:{uuid.uuid4()}"
        )
        deadline = began + 600
        while await conn.fetchval("SELECT count(*) FROM outbound_messages WHERE status = 'sent'") < count:
            if time.perf_counter() > deadline:
                raise SystemExit("messages were not all sent within 10 minutes")
            await asyncio.sleep(0.1)
        outside = time.perf_counter() - began
        inside = await conn.fetchval(
            "SELECT extract(epoch FROM max(sent_at) - min(claimed_at)) FROM outbound_messages"
        )
        attempts = await conn.fetchval("SELECT sum(attempts) FROM outbound_messages")
    finally:
        await conn.close()
        await pool.aclose()
    async with httpx.AsyncClient(base_url=fake, timeout=60) as http:
        bodies = [m["body"] for m in (await http.get("/_fake/messages")).json()]
    duplicates = sum(n - 1 for n in Counter(bodies).values() if n > 1)
    return {
        "received": len(bodies),
        "duplicates": duplicates,
        "attempts": int(attempts),
        "inside_s": float(inside),
        "outside_s": outside,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="due messages (default 10000)")
    parser.add_argument("--batch-size", type=int, default=500, help="MESSAGES_BATCH_SIZE (default 500)")
    parser.add_argument("--concurrency", type=int, default=50, help="MESSAGES_SEND_CONCURRENCY (default 50)")
    args = parser.parse_args()
    configure_logging("bench", "WARNING")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    name = f"prosaas_bench_{uuid.uuid4().hex[:10]}"
    procs: list[subprocess.Popen[bytes]] = []
    logs = [tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")]  # noqa: SIM115 - closed below
    asyncio.run(admin_execute(f'CREATE DATABASE "{name}"'))
    try:
        started = time.perf_counter()
        server = asyncio.run(fill(dsn(name), args.messages))
        filled = time.perf_counter() - started
        fake_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
        env |= {"DATABASE_URL": dsn(name), "REDIS_URL": REDIS_URL, "APP_ENV": "test", "LOG_LEVEL": "WARNING"}
        env |= {"LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1", "WORKER_QUEUES": "default"}
        env |= {"TWILIO_API_BASE_URL": f"http://127.0.0.1:{fake_port}", "TWILIO_ACCOUNT_SID": ACCOUNT_SID}
        env |= {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "MESSAGES_BATCH_SIZE": str(args.batch_size)}
        env |= {"MESSAGES_SEND_CONCURRENCY": str(args.concurrency)}
        fake_args = ["--port", str(fake_port), "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN]
        procs.append(start(["-m", "tests.fakes.twilio_messages", *fake_args], env, logs[0]))
        fake = f"http://127.0.0.1:{fake_port}"
        wait_for(f"{fake}/_fake/messages", procs[0], logs[0])
        procs.append(start(["-m", "prosaas_worker", "run"], env, logs[1]))
        time.sleep(2.0)  # let the worker connect before the clock starts (not a measured wait)
        figures = asyncio.run(run(dsn(name), fake, args.messages))
    finally:
        for proc in procs:
            stop(proc)
        for log in logs:
            log.close()
        asyncio.run(admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    print(f"python {platform.python_version()}, postgres {server}, {os.cpu_count()} cpus")
    print(
        f"{args.messages} due messages in {filled:.1f} s; "
        f"batch {args.batch_size}, concurrency {args.concurrency}"
    )
    print(f"{'measure':<44}{'seconds':>9}{'msg/s':>9}")
    for label, key in (
        ("first claim -> last send (row timestamps)", "inside_s"),
        ("enqueue -> all sent (outside)", "outside_s"),
    ):
        seconds = float(figures[key])
        print(f"{label:<44}{seconds:>9.2f}{args.messages / seconds:>9.0f}")
    print(
        f"provider received {figures['received']}, duplicates {figures['duplicates']}, "
        f"attempts {figures['attempts']}"
    )
    print("goal: >= 500 msg/s and 0 duplicates")


if __name__ == "__main__":
    main()
