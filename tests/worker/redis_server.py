"""A private ``redis-server`` for tests that stop and restart Redis itself (never the shared one)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.support import free_port, wait_until

REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """``redis-server`` on a free loopback port with AOF persistence in ``directory``; restartable on
    the same port and directory, so what it held before a restart is there after it."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        if REDIS_SERVER is None:
            # Not a skip: the restart test is the proof that workers survive a Redis outage, and every
            # machine that runs the suite has redis-server (.ci/run starts the shared one with it).
            pytest.fail("redis-server is not on PATH: install the redis-server package")
        self.directory = directory
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Redis:
        client: Redis = Redis.from_url(
            self.url, decode_responses=True, socket_connect_timeout=1, socket_timeout=5
        )
        return client

    def spawn(self) -> None:
        assert REDIS_SERVER is not None
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--maxmemory-policy", "noeviction",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    async def start(self) -> None:
        """Start the server and wait until it answers PING (its data loaded)."""
        self.spawn()
        client = self.client()

        async def answers() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited: {self.log()}")
            try:
                return bool(await client.ping())
            except (RedisConnectionError, OSError):
                return False

        try:
            await wait_until(answers, timeout=20, interval=0.05)
        finally:
            await client.aclose()

    async def shutdown(self) -> int:
        """``SHUTDOWN SAVE`` (persist, then exit) and the exit code."""
        assert self.proc is not None
        client = self.client()
        try:
            await client.shutdown(save=True)  # the server closes the connection instead of answering
        finally:
            await client.aclose()
        return await asyncio.to_thread(self.proc.wait, 20)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text() if path.exists() else ""
