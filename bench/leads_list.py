"""Benchmark the leads list and phone search of the api against a bare ``SELECT 1`` ceiling.

Creates a database ``prosaas_bench_<random>`` on the local Postgres (dropped at the end, also on Ctrl-C),
migrates it, fills one business with ``--leads`` leads in one ``INSERT … SELECT generate_series``, then
starts the api (``python -m prosaas_api``: one uvicorn process, LOG_LEVEL=WARNING) and
``bench/ceiling_app.py`` (same server setup, one route running ``SELECT 1`` through an asyncpg pool), and
drives them in ``--rounds`` interleaved rounds of ``--duration`` seconds with ``--concurrency``
keep-alive connections:

  (a) ``GET /api/leads?limit=50``             first page, newest first
  (b) ``GET /api/leads?q=<digits>&limit=50``  the phone of a random existing lead
  (c) ``GET /ceiling``                        the ceiling

It prints figures; it never passes or fails on them.

    .venv/bin/python -m bench.leads_list --duration 10 --rounds 3 --concurrency 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import IO

import asyncpg
import httpx

from prosaas_api.auth.passwords import hash_password
from prosaas_api.seed import AREA_CODES, COMPANIES, EMAIL_DOMAINS, FIRST_NAMES, LAST_NAMES, TAGS
from prosaas_common.logging import configure_logging
from prosaas_common.migrate import run_migrations
from prosaas_common.models import DEFAULT_LEAD_STATUSES

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# The api only reads and writes sign-in keys there (never flushed).
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
OWNER_EMAIL = "owner@bench.prosaas.local"
SOURCES = ["call"] * 4 + ["manual"] * 3 + ["webhook"] * 2 + ["import"]

# One statement: names, phones (unique: area code by i mod 20, a coprime stride over the rest), e-mails,
# companies, sources, owners, tags, statuses weighted over the kanban, created_at over 60 days.
FILL_LEADS = """
WITH p AS (SELECT $2::bigint[] st, $3::text[] fn, $4::text[] ln, $5::text[] ac, $6::text[] dom,
                  $7::text[] co, $8::text[] src, $9::text[] tg)
INSERT INTO leads (business_id, status_id, rank, first_name, last_name, phone, email, company, source,
                   owner_user_id, tags, created_at, updated_at, status_changed_at)
SELECT $1,
       CASE WHEN r < 0.35 THEN st[1] WHEN r < 0.60 THEN st[2] WHEN r < 0.75 THEN st[3]
            WHEN r < 0.87 THEN st[4] ELSE st[5] END,
       i, f, l,
       '+1' || ac[1 + i % cardinality(ac)] || (2000000 + (i / cardinality(ac)) * 7919 % 7000000)::text,
       CASE WHEN r2 < 0.85 THEN translate(lower(f || '.' || l), '''', '') || (i % 997)::text
                                || '@' || dom[1 + i % cardinality(dom)] END,
       CASE WHEN r3 < 0.3 THEN co[1 + (i * 31) % cardinality(co)] ELSE '' END,
       src[1 + floor(r4 * cardinality(src))::int],
       CASE WHEN r2 < 0.7 THEN $10::bigint END,
       CASE WHEN r3 > 0.6 THEN ARRAY[tg[1 + floor(r4 * cardinality(tg))::int]]::varchar[]
            ELSE '{}'::varchar[] END,
       ts, ts, ts
FROM (SELECT p.*, i, random() r, random() r2, random() r3, random() r4,
             fn[1 + floor(random() * cardinality(fn))::int] f,
             ln[1 + floor(random() * cardinality(ln))::int] l,
             now() - random() * interval '60 days' ts
      FROM p, generate_series(1, $11::int) i) g
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dsn(name: str) -> str:
    return ADMIN_DSN.rpartition("/")[0] + "/" + name


async def admin_execute(statement: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def fill(url: str, leads: int, password: str) -> tuple[str, list[str]]:
    """Migrate, then one business, its owner and ``leads`` leads; returns the Postgres version and
    the national digits of some leads' phones (the search terms)."""
    await run_migrations(url, "upgrade", "head")
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            business = await conn.fetchval(
                "INSERT INTO businesses (name, timezone, default_region) "
                "VALUES ('Bench Dental', 'America/New_York', 'US') RETURNING id"
            )
            await conn.execute("INSERT INTO business_settings (business_id) VALUES ($1)", business)
            statuses = []
            for position, (key, name, color, is_default) in enumerate(DEFAULT_LEAD_STATUSES):
                statuses.append(
                    await conn.fetchval(
                        "INSERT INTO lead_statuses (business_id, key, name, color, position, is_default, "
                        "is_system) VALUES ($1, $2, $3, $4, $5, $6, true) RETURNING id",
                        *(business, key, name, color, position, is_default),
                    )
                )
            owner = await conn.fetchval(
                "INSERT INTO users (business_id, email, full_name, role, password_hash) "
                "VALUES ($1, $2, 'Bench Owner', 'owner', $3) RETURNING id",
                business,
                OWNER_EMAIL,
                hash_password(password),
            )
            await conn.execute("SELECT setseed(0.42)")
            await conn.execute(
                FILL_LEADS,
                business,
                statuses,
                list(FIRST_NAMES),
                list(LAST_NAMES),
                list(AREA_CODES),
                list(EMAIL_DOMAINS),
                list(COMPANIES),
                SOURCES,
                list(TAGS),
                owner,
                leads,
            )
        await conn.execute("ANALYZE")
        phones = await conn.fetch("SELECT substr(phone, 3) AS digits FROM leads ORDER BY random() LIMIT 500")
        server = await conn.fetchval("SHOW server_version")
        return str(server), [row["digits"] for row in phones]
    finally:
        await conn.close()


def start(args: list[str], env: dict[str, str], log: IO[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_for(url: str, proc: subprocess.Popen[bytes], log: IO[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            raise SystemExit(f"{url} did not come up:\n{log.read()[-3000:]}")
        time.sleep(0.1)


@dataclass
class Figures:
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        rank = max(1, min(len(self.latencies), round(fraction * len(self.latencies) + 0.5)))
        return self.latencies[rank - 1] * 1000


async def drive(
    client: httpx.AsyncClient,
    next_path: Callable[[], str],
    good: Callable[[bytes], bool],
    duration: float,
    concurrency: int,
) -> Figures:
    """``concurrency`` loops send GETs back to back until ``duration`` has passed (after a 1 s warm-up)."""
    latencies: list[float] = []
    errors = 0

    async def loop(deadline: float, record: bool) -> None:
        nonlocal errors
        while (started := time.perf_counter()) < deadline:
            try:
                response = await client.get(next_path())
                ok = response.status_code == 200 and good(response.content)
            except httpx.HTTPError:
                ok = False
            if record:
                latencies.append(time.perf_counter() - started)
                errors += not ok

    await asyncio.gather(*(loop(time.perf_counter() + 1.0, False) for _ in range(concurrency)))
    began = time.perf_counter()
    await asyncio.gather(*(loop(began + duration, True) for _ in range(concurrency)))
    return Figures(len(latencies), time.perf_counter() - began, sorted(latencies), errors)


def has_items(body: bytes) -> bool:
    """A page with at least one lead (the list's first key is ``items``)."""
    return b'"items":[{' in body


def client_for(base: str, concurrency: int, token: str | None = None) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=base, limits=limits, headers=headers, timeout=30, http2=False)


def merged(first: Figures | None, more: Figures) -> Figures:
    if first is None:
        return more
    latencies = sorted(first.latencies + more.latencies)
    return Figures(
        first.requests + more.requests, first.seconds + more.seconds, latencies, first.errors + more.errors
    )


async def measure(
    api: str, ceiling: str, password: str, phones: list[str], duration: float, concurrency: int, rounds: int
) -> dict[str, Figures]:
    """``rounds`` rounds of (a), (b), (c), ``duration`` seconds each, summed per scenario: interleaving
    spreads any drift of the machine over all three instead of charging it to one."""
    async with httpx.AsyncClient(base_url=api) as http:
        login = await http.post(
            "/api/auth/login", json={"email": OWNER_EMAIL, "password": password, "client": "api"}
        )
        login.raise_for_status()
        token = login.json()["access_token"]
    rng = random.Random(7)  # noqa: S311 - picks search terms
    names = ("(a) GET /api/leads?limit=50", "(b) GET /api/leads?q=<phone>&limit=50", "(c) ceiling: SELECT 1")
    results: dict[str, Figures | None] = dict.fromkeys(names)
    async with client_for(api, concurrency, token) as client, client_for(ceiling, concurrency) as bare:
        for _ in range(rounds):
            runs = (
                drive(client, lambda: "/api/leads?limit=50", has_items, duration, concurrency),
                drive(
                    client,
                    lambda: f"/api/leads?q={rng.choice(phones)}&limit=50",
                    has_items,
                    duration,
                    concurrency,
                ),
                drive(bare, lambda: "/ceiling", lambda body: body == b'{"value":1}', duration, concurrency),
            )
            for name, run in zip(names, runs, strict=True):
                results[name] = merged(results[name], await run)
    return {name: figures for name, figures in results.items() if figures is not None}


def report(results: dict[str, Figures]) -> None:
    ceiling = list(results.values())[-1].rate
    print(
        f"{'scenario':<40}{'requests':>9}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
        f"{'errors':>7}{'vs (c)':>8}"
    )
    for name, fig in results.items():
        share = f"{fig.rate / ceiling:.0%}" if ceiling else "-"
        print(
            f"{name:<40}{fig.requests:>9}{fig.rate:>8.0f}{fig.percentile_ms(0.50):>8.1f}"
            f"{fig.percentile_ms(0.95):>8.1f}{fig.percentile_ms(0.99):>8.1f}{fig.errors:>7}{share:>8}"
        )
    print("goal: (a) and (b) at least 40% of (c)")


def lead_count(raw: str) -> int:
    count = int(raw) if raw.isdigit() else 0
    if not 1 <= count <= 1_000_000:
        raise argparse.ArgumentTypeError(f"expected 1 to 1000000, got {raw!r}")
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--duration", type=float, default=15.0, help="seconds per scenario and round (default 15)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (a), (b), (c) (default 3)")
    parser.add_argument("--concurrency", type=int, default=20, help="connections in flight (default 20)")
    parser.add_argument("--leads", type=lead_count, default=100_000, help="leads to create (default 100000)")
    args = parser.parse_args()
    configure_logging("bench", "WARNING")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as for Ctrl-C

    name = f"prosaas_bench_{uuid.uuid4().hex[:10]}"
    password = secrets.token_urlsafe(16)
    procs: list[subprocess.Popen[bytes]] = []
    logs = [tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")]  # noqa: SIM115 - closed below
    asyncio.run(admin_execute(f'CREATE DATABASE "{name}"'))
    try:
        started = time.perf_counter()
        server, phones = asyncio.run(fill(dsn(name), args.leads, password))
        filled = time.perf_counter() - started
        api_port, ceiling_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
        env |= {"DATABASE_URL": dsn(name), "REDIS_URL": REDIS_URL, "APP_ENV": "test", "LOG_LEVEL": "WARNING"}
        env |= {"LOG_FORMAT": "json", "API_HOST": "127.0.0.1", "API_PORT": str(api_port)}
        env |= {"ACCESS_TOKEN_TTL": "3600", "PYTHONUNBUFFERED": "1"}
        procs.append(start(["-m", "prosaas_api"], env, logs[0]))
        procs.append(start(["-m", "bench.ceiling_app", str(ceiling_port)], env, logs[1]))
        api, ceiling = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ceiling_port}"
        wait_for(f"{api}/api/health", procs[0], logs[0])
        wait_for(f"{ceiling}/health", procs[1], logs[1])
        print(
            f"Python {platform.python_version()}, PostgreSQL {server}, {os.cpu_count()} CPUs "
            f"(load average {os.getloadavg()[0]:.2f}), uvicorn {version('uvicorn')}, "
            f"fastapi {version('fastapi')}, sqlalchemy {version('sqlalchemy')}"
        )
        print(
            f"{args.leads} leads in {name} filled in {filled:.1f} s; one uvicorn process each; "
            f"{args.rounds} rounds of {args.duration:g} s per scenario at concurrency {args.concurrency}"
        )
        report(
            asyncio.run(measure(api, ceiling, password, phones, args.duration, args.concurrency, args.rounds))
        )
    finally:
        for proc in procs:
            stop(proc)
        for log in logs:
            log.close()
        asyncio.run(admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted (servers stopped, database dropped)")
