"""Scheduler settings: defaults, environment names and the refusals."""

from __future__ import annotations

import socket

import pytest

from prosaas_common.settings import ConfigError, build_settings
from prosaas_scheduler.settings import SchedulerSettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INSTANCE_ID", "LEADER_TTL", "TICK_SECONDS", "HEARTBEAT_TTL", "SCHEDULES"):
        monkeypatch.delenv(f"SCHEDULER_{name}", raising=False)
    settings = build_settings(SchedulerSettings)
    assert settings.scheduler_instance_id == socket.gethostname()
    assert (settings.scheduler_leader_ttl, settings.scheduler_tick_seconds) == (15.0, 1.0)
    assert settings.scheduler_heartbeat_ttl == 30.0
    assert settings.scheduler_schedules is None


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_INSTANCE_ID", " scheduler-2 ")
    monkeypatch.setenv("SCHEDULER_LEADER_TTL", "5")
    monkeypatch.setenv("SCHEDULER_TICK_SECONDS", "0.5")
    monkeypatch.setenv("SCHEDULER_HEARTBEAT_TTL", "10")
    monkeypatch.setenv("SCHEDULER_SCHEDULES", "tests.scheduler.jobs:PROCESS_SCHEDULES")
    settings = build_settings(SchedulerSettings)
    assert settings.scheduler_instance_id == "scheduler-2"
    assert (
        settings.scheduler_leader_ttl,
        settings.scheduler_tick_seconds,
        settings.scheduler_heartbeat_ttl,
    ) == (
        5.0,
        0.5,
        10.0,
    )
    assert settings.scheduler_schedules == "tests.scheduler.jobs:PROCESS_SCHEDULES"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"scheduler_instance_id": "two words"}, "SCHEDULER_INSTANCE_ID"),
        ({"scheduler_leader_ttl": 0}, "SCHEDULER_LEADER_TTL"),
        ({"scheduler_tick_seconds": 0}, "SCHEDULER_TICK_SECONDS"),
        ({"scheduler_tick_seconds": 5, "scheduler_heartbeat_ttl": 9}, "SCHEDULER_HEARTBEAT_TTL"),
    ],
)
def test_bad_values_name_the_variable(overrides: dict[str, object], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_settings(SchedulerSettings, **overrides)
    assert any(line.startswith(variable) for line in caught.value.lines), caught.value.lines
