"""Benchmark the calls service under simulated Twilio load: the OpenAI path, ONE calls process.

Creates a database ``prosaas_bench_<random>`` (dropped at the end, also on Ctrl-C), migrates it and adds one
business with a phone number. Starts the local OpenAI Realtime server (``tests/fakes/openai_realtime.py``,
its own process: server VAD emulated, every response 3 s of audio streamed at real time) and one calls
process (``python -m prosaas_calls``, ``LOG_LEVEL=WARNING``, OPENAI_REALTIME_URL pointing at the fake).
The callers are ``python -m prosaas_calls.simulate`` processes (``--sim-procs``): signed webhooks, the
media stream at real-time pacing (a frame every 20 ms each way), marks echoed as the audio plays.

1. Start → first audio: ``--starts`` calls started at the same instant, each waiting for its greeting.
2. Load levels (``--levels``): N calls started over ``--ramp`` seconds, each hearing its greeting, then
   ``--rounds`` times: speaking 1 s, hearing the answer start, talking over it after 1 s (barge-in),
   and hearing the next answer out. Per level: the per-frame playback gap p99 (silence inside a
   response, as the simulated Twilio played it), lost frames (the service's own counts in ``calls.usage``
   against what the callers sent and received), barge-in reaction (caller's first loud frame →
   ``clear`` received; and the service's own histogram), CPU per call (the process's utime+stime over
   the call-seconds) and memory per call (peak VmRSS during the level above the idle process, over N).
   The run stops after the first level that misses p99 gap ≤ 45 ms or loses a frame.

It prints figures and never passes or fails. The callers, the fake and Postgres share the machine's cores
with the calls process: on a small machine the figures are a lower bound for the service.

    .venv/bin/python -m bench.calls_load --levels 25,50,100 --starts 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx

from bench.leads_list import admin_execute, dsn, free_port, start, stop, wait_for
from prosaas_calls.simulate.report import percentile, percentile_over
from prosaas_common.logging import configure_logging
from prosaas_common.migrate import run_migrations
from prosaas_common.settings import DEV_INTERNAL_SECRET
from tests.support import TEST_REDIS_URL

REDIS_URL = os.environ.get("BENCH_REDIS_URL") or TEST_REDIS_URL
AUTH_TOKEN = "bench-calls-auth-token"
PUBLIC_HOST = "calls.bench.example"
NUMBER = "+12125550199"
OPENAI_KEY = "sk-bench-calls"
GAP_LIMIT_MS = 45.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def greeting_script() -> list[str]:
    return ["wait", "hangup"]


def load_script(rounds: int) -> list[str]:
    steps = ["wait"]
    for _ in range(rounds):
        steps += ["tone:1000", "wait:start", "wait:1", "tone:400", "wait"]
    return [*steps, "hangup"]


async def fill(url: str) -> str:
    await run_migrations(url, "upgrade", "head")
    conn = await asyncpg.connect(url)
    try:
        business = await conn.fetchval(
            "INSERT INTO businesses (name, timezone) VALUES ('Bench Salon', 'Europe/London') RETURNING id"
        )
        await conn.execute(
            "INSERT INTO business_settings (business_id, max_concurrent_calls) VALUES ($1, 10000)", business
        )
        await conn.execute(
            "INSERT INTO business_phone_numbers (business_id, e164) VALUES ($1, $2)", business, NUMBER
        )
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def rss_kib(pid: int) -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


class RssSampler:
    """The peak VmRSS of a process while a level runs (sampled every 200 ms on a thread of the bench)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, rss_kib(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def histogram(metrics: str, name: str) -> dict[str, float]:
    """The cumulative buckets (``le`` → count) of one Prometheus histogram, plus ``count``."""
    buckets: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[le] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{name}_count"):
            buckets["count"] = float(line.rsplit(" ", 1)[1])
    return buckets


def scrape(base: str) -> str:
    headers = {"Authorization": f"Bearer {DEV_INTERNAL_SECRET}"}
    return httpx.get(f"{base}/metrics", headers=headers, timeout=10).text


def share_within(before: dict[str, float], after: dict[str, float], le: str) -> tuple[int, float | None]:
    """(observations during the level, share of them within bucket ``le``)."""
    count = int(after.get("count", 0) - before.get("count", 0))
    if count <= 0:
        return 0, None
    return count, (after.get(le, 0) - before.get(le, 0)) / count


def simulate(
    base: str, calls: int, procs: int, ramp: float, steps: list[str], url: str
) -> list[dict[str, Any]]:
    """Run ``calls`` simulated calls split over ``procs`` simulator processes; their JSON figures."""
    shares = [calls // procs + (1 if i < calls % procs else 0) for i in range(procs)]
    args = ["-m", "prosaas_calls.simulate", "--base-url", base, "--public-host", PUBLIC_HOST]
    args += ["--auth-token", AUTH_TOKEN, "--to", NUMBER, "--no-record", "--json", "--database-url", url]
    args += ["--turn-timeout", "30"] + [f"--step={step}" for step in steps]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    running = [
        subprocess.Popen(
            [sys.executable, *args, "--calls", str(share), "--ramp", str(ramp)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for share in shares
        if share
    ]
    outputs = [proc.communicate(timeout=900)[0] for proc in running]
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


def merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    figures = [part["aggregate"] for part in parts]
    total: dict[str, Any] = {}
    for key in ("calls", "refused", "no_audio", "frames_received", "frames_sent", "call_seconds"):
        total[key] = sum(f[key] for f in figures)
    for key in ("first_audio_ms", "webhook_ms", "response_latency_ms", "barge_in_ms", "gaps_ms"):
        total[key] = [v for f in figures for v in f[key]]
    lost = [f for f in figures if f["lost_in"] is not None]
    total["lost_in"] = sum(f["lost_in"] for f in lost) if lost else None
    total["lost_out"] = sum(f["lost_out"] for f in lost) if lost else None
    total["sender_lag_max_ms"] = max(f["sender_lag_max_ms"] for f in figures)
    total["ended_by"] = sorted({e for f in figures for e in f["ended_by"]})
    total["gap_p99_ms"] = percentile_over(total["gaps_ms"], total["frames_received"], 99)
    return total


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_level(
    base: str, pid: int, fake_pid: int, idle_kib: int, calls: int, args: argparse.Namespace, url: str
) -> dict[str, Any]:
    before = scrape(base)
    cpu0, fake0, sims0, began = cpu_seconds(pid), cpu_seconds(fake_pid), children_cpu(), time.monotonic()
    with RssSampler(pid) as rss:
        parts = simulate(base, calls, min(args.sim_procs, calls), args.ramp, load_script(args.rounds), url)
    cpu, wall = cpu_seconds(pid) - cpu0, time.monotonic() - began
    load_cpu = cpu_seconds(fake_pid) - fake0 + children_cpu() - sims0
    after = scrape(base)
    figures = merged(parts)
    name = "call_barge_in_reaction_seconds"
    count, within = share_within(histogram(before, name), histogram(after, name), "0.005")
    figures |= {"n": calls, "cpu_s": cpu, "peak_kib": rss.peak, "barge_server": (count, within)}
    figures |= {"calls_cores": cpu / wall, "load_cores": load_cpu / wall}
    figures["cpu_per_call_pct"] = 100 * cpu / figures["call_seconds"] if figures["call_seconds"] else None
    figures["kib_per_call"] = (rss.peak - idle_kib) / calls
    figures["ok"] = (
        figures["gap_p99_ms"] is not None
        and figures["gap_p99_ms"] <= GAP_LIMIT_MS
        and figures["lost_in"] == 0
        and figures["lost_out"] == 0
        and figures["calls"] == calls
        and figures["no_audio"] == 0
        and all(not e.startswith("error") for e in figures["ended_by"])
    )
    return figures


def print_level(f: dict[str, Any]) -> None:
    count, within = f["barge_server"]
    print(
        f"| {f['n']} | {f['calls']} | {fmt(f['gap_p99_ms'])} | {fmt(max(f['gaps_ms'], default=0.0))} "
        f"| {f['lost_in']}/{f['lost_out']} | {fmt(f['cpu_per_call_pct'], 2)} | {fmt(f['kib_per_call'], 0)} "
        f"| {fmt(percentile(f['first_audio_ms'], 95))} | {fmt(percentile(f['response_latency_ms'], 95))} "
        f"| {fmt(percentile(f['barge_in_ms'], 99))} "
        f"| {fmt(100 * within if within is not None else None, 0)}% "
        f"of {count} | {fmt(f['calls_cores'], 2)} | {fmt(f['load_cores'], 2)} "
        f"| {fmt(f['sender_lag_max_ms'])} | {'yes' if f['ok'] else 'no'} |"
        + ("" if f["ok"] else f" {f['no_audio']} calls without audio; ended by {', '.join(f['ended_by'])}"),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--levels", default="25,50,100,150,200,250", help="concurrent calls per level")
    parser.add_argument("--starts", type=int, default=50, help="simultaneous starts for start → first audio")
    parser.add_argument("--rounds", type=int, default=3, help="turns (each with a barge-in) per call")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which a level's calls start")
    parser.add_argument("--sim-procs", type=int, default=2, help="simulator processes (default 2)")
    parser.add_argument("--keep-going", action="store_true", help="run every level even after one misses")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",") if n.strip()]
    configure_logging("bench", "WARNING")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    name = f"prosaas_bench_{uuid.uuid4().hex[:10]}"
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[IO[str]] = [tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")]  # noqa: SIM115
    asyncio.run(admin_execute(f'CREATE DATABASE "{name}"'))
    results: list[dict[str, Any]] = []
    try:
        server = asyncio.run(fill(dsn(name)))
        fake_port, calls_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
        env |= {"DATABASE_URL": dsn(name), "REDIS_URL": REDIS_URL, "APP_ENV": "test", "LOG_LEVEL": "WARNING"}
        env |= {"LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1", "CALLS_HOST": "127.0.0.1"}
        env |= {"CALLS_PORT": str(calls_port), "PUBLIC_HOST": PUBLIC_HOST, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
        env |= {"TWILIO_ACCOUNT_SID": "AC" + "5" * 32, "MAX_CONCURRENT_CALLS": "10000"}
        env |= {
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{fake_port}/v1/realtime",
        }
        fake_args = ["--port", str(fake_port), "--api-key", OPENAI_KEY, "--vad", "--pace", "1"]
        procs.append(
            start(
                ["-m", "tests.fakes.openai_realtime", *fake_args, "--response-ms", "3000", "--quiet"],
                env,
                logs[0],
            )
        )
        procs.append(start(["-m", "prosaas_calls"], env, logs[1]))
        base = f"http://127.0.0.1:{calls_port}"
        wait_for(f"{base}/health", procs[1], logs[1])
        pid = procs[1].pid
        # Warm-up (imports, pools, first connections), not measured.
        simulate(base, 2, 1, 0.0, greeting_script(), dsn(name))
        idle_kib = rss_kib(pid)
        before = histogram(scrape(base), "call_first_audio_seconds")
        starts = merged(simulate(base, args.starts, 1, 0.0, greeting_script(), dsn(name)))
        served, within_50 = share_within(before, histogram(scrape(base), "call_first_audio_seconds"), "0.05")
        print(f"python {platform.python_version()}, postgres {server}, {os.cpu_count()} cpus", flush=True)
        print(
            f"\n{args.starts} simultaneous starts: start → first audio p50 "
            f"{fmt(percentile(starts['first_audio_ms'], 50))} ms, "
            f"p95 {fmt(percentile(starts['first_audio_ms'], 95))} ms, max "
            f"{fmt(max(starts['first_audio_ms'], default=None))} ms; incoming_call webhook p95 "
            f"{fmt(percentile(starts['webhook_ms'], 95))} ms; {starts['no_audio']} without audio; "
            f"the service's own histogram (session start → first audio sent): "
            f"{fmt(100 * within_50 if within_50 is not None else None, 0)}% of {served} within 50 ms",
            flush=True,
        )
        print(f"idle calls process RSS {idle_kib / 1024:.1f} MiB\n")
        print("CPU per call = the calls process's CPU seconds / call-seconds; 100 / it = calls per core.")
        print(
            "| calls | streamed | gap p99 ms | gap max ms | lost in/out | CPU % of a core per call "
            "| KiB per call | first audio p95 ms | response p95 ms | barge-in p99 ms (sim) "
            "| barge-in ≤ 5 ms (service) | calls process cores | load generator cores | sim lag max ms | ok |"
        )
        print(
            "| ---: " * 14 + "| --- |",
            flush=True,
        )
        for calls in levels:
            figures = run_level(base, pid, procs[0].pid, idle_kib, calls, args, dsn(name))
            results.append(figures)
            print_level(figures)
            if not figures["ok"] and not args.keep_going:
                break
    finally:
        for proc in reversed(procs):
            stop(proc)
        for log in logs:
            log.close()
        asyncio.run(admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    passing = [f["n"] for f in results if f["ok"]]
    print(
        f"\nmax concurrent calls with p99 playback gap ≤ {GAP_LIMIT_MS:.0f} ms and no lost frames: "
        f"{max(passing) if passing else 'none of the levels run'}"
    )


if __name__ == "__main__":
    main()
