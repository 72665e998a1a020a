"""Scheduler settings: the common variables plus leadership, tick and heartbeat timings."""

from __future__ import annotations

import socket
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from prosaas_common.settings import CommonSettings


class SchedulerSettings(CommonSettings):
    """``SCHEDULER_*`` variables; durations are in seconds."""

    # Identifies this process in the leader token and its heartbeat key; the container hostname by
    # default, so `health` run inside the same container finds its own heartbeat.
    scheduler_instance_id: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        default_factory=socket.gethostname
    )
    # The leader lock expires this long after the holder's last renewal (renewed every TTL/3); a
    # standby takes over within about this long when the leader dies.
    scheduler_leader_ttl: Annotated[float, Field(ge=0.1, le=3600)] = 15.0
    scheduler_tick_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    scheduler_heartbeat_ttl: Annotated[float, Field(gt=0, le=3600)] = 30.0
    # "module:attribute" naming a list of Schedule objects; unset means prosaas_scheduler.schedules.
    scheduler_schedules: str | None = None

    @field_validator("scheduler_instance_id")
    @classmethod
    def _instance_id(cls, value: str) -> str:
        value = value.strip()
        if not value or any(ch.isspace() for ch in value):
            raise ValueError("must be non-empty and contain no whitespace")
        return value

    @model_validator(mode="after")
    def _heartbeat_outlives_ticks(self) -> SchedulerSettings:
        if self.scheduler_heartbeat_ttl <= 2 * self.scheduler_tick_seconds:
            raise ValueError(
                "SCHEDULER_HEARTBEAT_TTL: must be more than twice SCHEDULER_TICK_SECONDS, "
                "or `health` fails between two ticks"
            )
        return self
