"""Redis keys owned by the scheduler (listed in docs/architecture.md)."""

from __future__ import annotations

# String: "<instance_id>:<random token>" of the current leader; PX = leader TTL, renewed by the holder.
LEADER_KEY = "scheduler:leader"
LAST_RUN_PREFIX = "scheduler:last_run:"
HEARTBEAT_PREFIX = "scheduler:heartbeat:"


def last_run_key(schedule_name: str) -> str:
    """String: epoch seconds of the latest slot enqueued for the schedule (only ever moves forward)."""
    return f"{LAST_RUN_PREFIX}{schedule_name}"


def heartbeat_key(instance_id: str) -> str:
    """String: JSON ``{"instance_id", "role", "at", "pid"}`` written every tick; PX = heartbeat TTL."""
    return f"{HEARTBEAT_PREFIX}{instance_id}"


def job_id(schedule_name: str, slot_epoch: int) -> str:
    """Deterministic arq job id of one run, so enqueueing the same slot twice is a no-op."""
    return f"schedule:{schedule_name}:{slot_epoch}"
