"""Calls test fixtures: the app wired to the test database and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from prosaas_calls.app import create_app
from prosaas_calls.settings import CallsSettings
from prosaas_common.settings import build_settings
from tests.support import asgi_client


@pytest.fixture
def make_settings(database_url: str, redis_url: str) -> Callable[..., CallsSettings]:
    def make(**overrides: Any) -> CallsSettings:
        values: dict[str, Any] = {
            "app_env": "test",
            "database_url": database_url,
            "redis_url": redis_url,
            **overrides,
        }
        return build_settings(CallsSettings, **values)

    return make


@pytest.fixture
async def client(make_settings: Callable[..., CallsSettings]) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(make_settings())) as http:
        yield http
