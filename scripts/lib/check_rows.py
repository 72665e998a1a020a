"""Shared by the validate checks: result words, the services they know, and row output (stdlib only)."""

from __future__ import annotations

import os

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"

# Long-running services that must be up and healthy. `worker` is satisfied by the multi-worker trio too.
REQUIRED_SERVICES = ("prosaas-api", "prosaas-calls", "worker", "scheduler", "redis", "nginx")
MULTI_WORKERS = ("worker-high", "worker-default", "worker-low")
ONE_SHOT = ("migrate",)
FORBIDDEN = ("backend",)
# Services running our Python code (their LOG_LEVEL and APP_ENV are checked in the effective config).
APP_SERVICES = ("prosaas-api", "prosaas-calls", "worker", "scheduler", "migrate", *MULTI_WORKERS)


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


def row(result: str, check: str, detail: str) -> None:
    detail = " ".join(detail.split())
    print(f"{result}\t{check}\t{detail}")


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def shorten(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
