"""``whatsapp.check_sessions``, the slot of the WhatsApp session check: scheduled every 5 minutes and
silent while no gateway is configured; a configured gateway is told once that the check is not there yet."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from prosaas_common.jobs import JobName, Queue
from prosaas_common.settings import ConfigError, build_settings
from prosaas_scheduler.schedules import SCHEDULES
from prosaas_worker.context import WorkerResources
from prosaas_worker.jobs import whatsapp
from prosaas_worker.settings import WorkerConfig
from tests.worker.conftest import LogCapture

Check = Callable[..., Awaitable[str]]


@pytest.fixture
async def check(database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Check]:
    """Run the job as the worker would; keyword arguments are WorkerConfig fields."""
    monkeypatch.setattr(whatsapp, "_warned", set())
    created: list[WorkerResources] = []

    async def run(**settings: Any) -> str:
        config = build_settings(
            WorkerConfig, app_env="test", database_url=database_url, redis_url=redis_url, **settings
        )
        resources = WorkerResources.create(config)
        created.append(resources)
        ctx = resources.job_context(Queue.DEFAULT)
        ctx.update(job_id="schedule:whatsapp-session-check:300", job_try=1)
        return await whatsapp.check_sessions(ctx, scheduled_for="2026-01-01T00:05:00+00:00")

    yield run
    for resources in created:
        await resources.dispose()


async def test_without_a_gateway_it_is_not_configured_and_logs_only_debug(
    check: Check, debug_logs: LogCapture
) -> None:
    assert await check() == "not_configured"
    assert await check(whatsapp_gateway_url="  ") == "not_configured"
    records = [r for r in debug_logs.records() if r.get("logger") == "prosaas.worker.whatsapp"]
    assert [(r["event"], r["level"], r["reason"]) for r in records] == [
        ("whatsapp.sessions_skipped", "debug", "not_configured")
    ] * 2


async def test_with_a_gateway_it_warns_once_that_the_check_comes_with_the_channel(
    check: Check, debug_logs: LogCapture
) -> None:
    for _ in range(3):
        assert await check(whatsapp_gateway_url="http://baileys:3300/") == "not_implemented"
    [warning] = debug_logs.events("whatsapp.session_check_unavailable")
    assert (warning["level"], warning["gateway"]) == ("warning", "http://baileys:3300")
    assert len(debug_logs.events("whatsapp.sessions_skipped", reason="not_implemented")) == 2


def test_the_gateway_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="WHATSAPP_GATEWAY_URL"):
        build_settings(WorkerConfig, app_env="test", whatsapp_gateway_url="baileys:3300")
    assert build_settings(WorkerConfig, app_env="test").whatsapp_gateway_url is None


def test_the_check_is_scheduled_every_five_minutes_on_the_default_queue() -> None:
    [schedule] = [s for s in SCHEDULES if s.job == JobName.WHATSAPP_CHECK_SESSIONS]
    assert (schedule.name, schedule.queue, schedule.every) == (
        "whatsapp-session-check",
        Queue.DEFAULT,
        timedelta(minutes=5),
    )
