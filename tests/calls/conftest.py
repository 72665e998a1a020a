"""Calls test fixtures: the app wired to the test database and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

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


TWILIO_TOKEN = "calls-test-auth-token"
PUBLIC_HOST = "calls.example.com"


@pytest.fixture
async def twilio_client(make_settings: Callable[..., CallsSettings]) -> AsyncIterator[httpx.AsyncClient]:
    """The calls app with a Twilio account configured and a public host (what signatures cover)."""
    settings = make_settings(
        twilio_account_sid="AC" + "2" * 32, twilio_auth_token=TWILIO_TOKEN, public_host=PUBLIC_HOST
    )
    async with asgi_client(create_app(settings)) as http:
        yield http


async def twilio_post(
    client: httpx.AsyncClient, path: str, form: dict[str, str], *, token: str = TWILIO_TOKEN
) -> httpx.Response:
    """POST ``form`` to ``path`` signed as Twilio signs it (over the public URL)."""
    signature = RequestValidator(token).compute_signature(f"https://{PUBLIC_HOST}{path}", form)
    return await client.post(path, data=form, headers={"X-Twilio-Signature": signature})
