"""The `health` command: is this instance's loop alive, and which role does it have?

The loop writes ``scheduler:heartbeat:{instance_id}`` on every tick with a TTL of
``SCHEDULER_HEARTBEAT_TTL``, so the key exists only while the process runs *and* ticks. A process that
is up but stuck, or cannot reach Redis, lets the key expire and becomes unhealthy.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from redis.asyncio import Redis

from prosaas_scheduler.keys import heartbeat_key
from prosaas_scheduler.leader import REDIS_ERRORS, current_leader, describe_error


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    message: str
    role: str | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.healthy else 1


async def check_health(redis: Redis, instance_id: str, timeout: float = 2.0) -> HealthReport:
    """Read this instance's heartbeat (and the current leader) within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            raw = await redis.get(heartbeat_key(instance_id))
            leader = await current_leader(redis)
    except REDIS_ERRORS as exc:
        return HealthReport(False, f"scheduler {instance_id}: redis unreachable: {describe_error(exc)}")
    if raw is None:
        return HealthReport(
            False, f"scheduler {instance_id}: no heartbeat (not running, or its loop is stuck)"
        )
    try:
        data = json.loads(raw)
        role = str(data["role"])
        at = str(data.get("at", "?"))
    except (ValueError, KeyError, TypeError):
        return HealthReport(False, f"scheduler {instance_id}: unreadable heartbeat {raw!r}")
    return HealthReport(
        True, f"scheduler {instance_id}: alive, {role} (heartbeat {at}, leader: {leader or 'none'})", role
    )
