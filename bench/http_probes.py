"""Benchmark the api's probe and ops endpoints on a real uvicorn process.

Starts ``python -m prosaas_api`` on a free loopback port against the configured Postgres and Redis,
drives each endpoint with a fixed number of requests at a fixed concurrency over keep-alive
connections, and prints requests/s and latency percentiles. It prints figures; it never passes or
fails on them.

    .venv/bin/python -m bench.http_probes --requests 2000 --concurrency 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import httpx

ENDPOINTS = ("/api/health", "/readyz", "/version")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nearest_rank(sorted_values: list[float], fraction: float) -> float:
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


async def drive(base: str, path: str, total: int, concurrency: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    failures = 0
    remaining = iter(range(total))

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal failures
        for _ in remaining:
            started = time.perf_counter()
            response = await client.get(path)
            latencies.append(time.perf_counter() - started)
            failures += response.status_code != 200

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
        await client.get(path)  # warm up the connection and the route
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, sorted(latencies), failures


async def run(base: str, total: int, concurrency: int) -> None:
    print(f"{'endpoint':<14}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'non-200':>9}")
    for path in ENDPOINTS:
        elapsed, latencies, failures = await drive(base, path, total, concurrency)
        print(
            f"{path:<14}{total:>9}{total / elapsed:>9.0f}"
            f"{nearest_rank(latencies, 0.50) * 1000:>9.2f}{nearest_rank(latencies, 0.95) * 1000:>9.2f}"
            f"{nearest_rank(latencies, 0.99) * 1000:>9.2f}{failures:>9}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    port = free_port()
    env = {**os.environ, "API_PORT": str(port), "API_HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "prosaas_api"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/api/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("api did not start") from None
                time.sleep(0.1)
        asyncio.run(run(base, args.requests, args.concurrency))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


if __name__ == "__main__":
    main()
