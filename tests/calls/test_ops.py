"""Calls operations endpoints: /health and /readyz with the same rules as the api."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable

import httpx
import websockets

from prosaas_calls.app import create_app
from prosaas_calls.settings import CallsSettings
from tests.support import (
    asgi_client,
    closed_port,
    free_port,
    service_env,
    start_process,
    stop_process,
    wait_for_http,
)


async def test_health_names_the_calls_service(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["service"] == "calls"
    assert (await client.get("/api/health")).status_code == 404


async def test_readyz_200_when_dependencies_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


async def test_readyz_503_names_each_failed_dependency(make_settings: Callable[..., CallsSettings]) -> None:
    settings = make_settings(
        database_url=f"postgresql://postgres@127.0.0.1:{closed_port()}/x",
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
    )
    async with asgi_client(create_app(settings)) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert {name for name, check in body["checks"].items() if not check["ok"]} == {"postgres", "redis"}


async def test_readyz_answers_within_its_timeout_when_a_dependency_hangs(
    make_settings: Callable[..., CallsSettings],
) -> None:
    """A Postgres that accepts the TCP connection but never speaks: the probe reports a timeout."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # hold the connection open without answering
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = make_settings(
            readiness_timeout=0.3, database_url=f"postgresql://postgres@127.0.0.1:{port}/x"
        )
        async with asgi_client(create_app(settings)) as http:
            response = await http.get("/readyz")
    finally:
        server.close()
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["postgres"]["error"] == "timed out"
    assert checks["redis"]["ok"] is True


def test_calls_process_serves_health_on_its_port(database_url: str, redis_url: str) -> None:
    port = free_port()
    env = service_env({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "CALLS_PORT": str(port)})
    proc = start_process(["-m", "prosaas_calls"], env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health")
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["service"] == "calls"
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    finally:
        output = stop_process(proc)
    assert proc.returncode in (0, -signal.SIGTERM), output
    events = [json.loads(line)["event"] for line in output.splitlines() if line.startswith("{")]
    assert events == ["service.started", "service.stopped"]


async def test_websocket_health_greets_and_answers_ping(database_url: str, redis_url: str) -> None:
    port = free_port()
    env = service_env({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "CALLS_PORT": str(port)})
    proc = start_process(["-m", "prosaas_calls"], env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health")
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/health") as ws:
            assert json.loads(await ws.recv())["status"] == "ok"
            await ws.send(b"\x00binary")
            assert json.loads(await ws.recv())["type"] == "error"
            await ws.send("hello")
            assert json.loads(await ws.recv())["type"] == "error"
            await ws.send("ping")
            assert json.loads(await ws.recv()) == {"type": "pong"}
    finally:
        output = stop_process(proc)
    assert '"level": "error"' not in output, output
