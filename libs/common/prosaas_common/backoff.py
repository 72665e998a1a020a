"""Exponential backoff with full jitter, shared by everything that retries a remote call later."""

from __future__ import annotations

import random

# Each delay is its base times uniform(0.5, 1.0): receivers that failed together are not retried together.
JITTER = (0.5, 1.0)


def jittered_delay(schedule: tuple[float, ...], attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after attempt ``attempt`` (1-based) failed; the schedule's last value repeats."""
    base = schedule[min(max(attempt, 1), len(schedule)) - 1]
    return base * (rng or random).uniform(*JITTER)
