"""System jobs: a harmless ``ping`` that proves the enqueue → worker → effect pipeline end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from prosaas_common.jobs import JobName
from prosaas_worker.context import JobContext, get_resources, job_queue
from prosaas_worker.registry import JobSpec, job

PING_KEY_PREFIX = "worker:ping:"
PING_TTL_S = 3600


def ping_key(job_id: str) -> str:
    return f"{PING_KEY_PREFIX}{job_id}"


async def ping(ctx: JobContext, payload: Any = None) -> Any:
    """Record that this job ran (``worker:ping:{job_id}``, JSON, 1 h TTL) and return ``payload``."""
    queue = job_queue(ctx)
    record = {
        "job_id": ctx["job_id"],
        "job_try": ctx.get("job_try"),
        "queue": queue.short_name if queue else None,
        "payload": payload,
        "ran_at": datetime.now(UTC).isoformat(),
    }
    redis = get_resources(ctx).redis
    await redis.set(ping_key(ctx["job_id"]), json.dumps(record, default=str), ex=PING_TTL_S)
    return payload


JOBS: tuple[JobSpec, ...] = (job(ping, name=JobName.SYSTEM_PING),)
