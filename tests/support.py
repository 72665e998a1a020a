"""Helpers shared by the test suites: real Postgres databases, Redis isolation, polling, subprocesses."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from asgi_lifespan import LifespanManager

ROOT = Path(__file__).resolve().parent.parent
# A maintenance connection used to create and drop the per-run databases.
ADMIN_DSN = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_SERVER = os.environ.get("TEST_REDIS_SERVER", "redis://127.0.0.1:6379")
TEST_REDIS_LOCK = "prosaas-tests:redis-db:{}"


def _claim_redis_db() -> str:
    """A Redis database of this test run alone (flushed around every test), never the development db 0.

    Two runs on one machine (a developer's ``make test`` while CI runs) would flush each other's queues,
    so each run claims a free db from 15 down to 1 with a lock key in db 0 (released at exit, expiring
    after 3 h if the run dies) and exports it as TEST_REDIS_URL for the processes it starts.
    ``TEST_REDIS_URL`` set beforehand is used as it is.
    """
    preset = os.environ.get("TEST_REDIS_URL")
    if preset:
        return preset
    import atexit

    from redis import Redis as SyncRedis

    control = SyncRedis.from_url(f"{REDIS_SERVER}/0")
    for db in range(15, 0, -1):
        key = TEST_REDIS_LOCK.format(db)
        if control.set(key, os.getpid(), nx=True, ex=3 * 3600):
            atexit.register(control.delete, key)
            url = f"{REDIS_SERVER}/{db}"
            os.environ["TEST_REDIS_URL"] = url
            return url
    raise RuntimeError("every Redis test database (1-15) is claimed by another test run")


TEST_REDIS_URL = _claim_redis_db()


def database_dsn(name: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{name}"


async def create_database(prefix: str = "prosaas_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def closed_port() -> int:
    """A loopback TCP port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 15.0, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until it is true; fail the test with a clear message after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if await predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout}s")
        await asyncio.sleep(interval)


def service_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a service subprocess: this interpreter's PATH plus test settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update({"APP_ENV": "test", "LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env


def run_module(
    args: list[str], env: Mapping[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ...`` to completion with this interpreter; stdout and stderr kept apart."""
    return subprocess.run(
        [sys.executable, *args], env=dict(env), cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def start_process(args: list[str], env: Mapping[str, str], **kwargs: Any) -> subprocess.Popen[str]:
    """Start ``python -m ...`` style commands with this test run's interpreter."""
    return subprocess.Popen(
        [sys.executable, *args],
        env=dict(env),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def stop_process(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """Terminate (then kill if needed) and return everything it printed."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    out = proc.stdout.read() if proc.stdout else ""
    return out


@asynccontextmanager
async def asgi_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to ``app`` in-process, with its lifespan (startup/shutdown) run."""
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as client,
    ):
        yield client


def free_port() -> int:
    return closed_port()


def wait_for_http(url: str, timeout: float = 20.0) -> None:
    """Block until ``url`` answers at all (any status), for services started as processes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """``app`` (any ASGI app) under uvicorn on a free loopback port in this event loop; yields its
    ``http://`` base URL and stops the server afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
