"""API test fixtures: the app wired to the test database and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from prosaas_api.app import create_app
from prosaas_api.settings import ApiSettings
from prosaas_common.settings import build_settings
from tests.support import asgi_client

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def make_settings(database_url: str, redis_url: str) -> Callable[..., ApiSettings]:
    def make(**overrides: Any) -> ApiSettings:
        values: dict[str, Any] = {
            "app_env": "test",
            "database_url": database_url,
            "redis_url": redis_url,
            "metrics_token": METRICS_TOKEN,
            **overrides,
        }
        return build_settings(ApiSettings, **values)

    return make


@pytest.fixture
async def client(make_settings: Callable[..., ApiSettings]) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(make_settings())) as http:
        yield http
