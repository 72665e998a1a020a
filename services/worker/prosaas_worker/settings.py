"""Worker settings: which queues this process serves and how its arq workers behave."""

from __future__ import annotations

import socket
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from prosaas_common.jobs import Queue
from prosaas_common.settings import CommonSettings, load_settings

SERVICE = "prosaas-worker"
# arq writes the health key with a TTL of interval + 1 s; a container health check that runs every
# 30 s or so needs the key refreshed at least that often.
MAX_HEALTH_INTERVAL_S = 30


class WorkerConfig(CommonSettings):
    """Variables of the worker process (``WorkerConfig``, so it never shadows arq's ``WorkerSettings``)."""

    # WORKER_QUEUES=high,default,low — a comma list of short names, not JSON (hence NoDecode).
    worker_queues: Annotated[list[Queue], NoDecode] = Field(default_factory=lambda: list(Queue))
    worker_max_jobs: Annotated[int, Field(ge=1, le=1000)] = 10
    worker_health_interval: Annotated[int, Field(ge=1)] = 15
    worker_job_timeout: Annotated[int, Field(ge=1, le=86_400)] = 300
    worker_shutdown_grace: Annotated[float, Field(ge=0, le=3600)] = 20.0
    # Names this process in its health keys; the container hostname by default, so `health` run inside
    # the same container checks this container's workers, not a sibling's (`--scale worker=3`).
    worker_instance_id: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        default_factory=socket.gethostname
    )

    @field_validator("worker_instance_id")
    @classmethod
    def _instance_id(cls, value: str) -> str:
        value = value.strip()
        if not value or any(ch.isspace() or ch in "*?[]" for ch in value):
            raise ValueError("must be non-empty, without whitespace or glob characters")
        return value

    @field_validator("worker_queues", mode="before")
    @classmethod
    def _parse_queues(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            return value
        queues: list[Queue] = []
        for item in value:
            queue = Queue.from_name(item) if isinstance(item, str) else Queue(item)
            if queue not in queues:
                queues.append(queue)
        if not queues:
            choices = ", ".join(q.short_name for q in Queue)
            raise ValueError(f"name at least one queue (choose from {choices})")
        return queues

    @field_validator("worker_health_interval")
    @classmethod
    def _health_interval(cls, value: int) -> int:
        if value > MAX_HEALTH_INTERVAL_S:
            raise ValueError(
                f"must be at most {MAX_HEALTH_INTERVAL_S} s: the health key lives interval + 1 s and the "
                "health check must see it refreshed"
            )
        return value


def load_worker_config() -> WorkerConfig:
    """Settings for a process entry point; a bad variable prints one line and exits 2."""
    return load_settings(WorkerConfig, SERVICE)
