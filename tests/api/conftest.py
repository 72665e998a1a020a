"""API test fixtures: the app wired to the test database and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_api.app import create_app
from prosaas_api.auth.passwords import hash_password
from prosaas_api.settings import ApiSettings
from prosaas_common.db import create_session_factory, unit_of_work
from prosaas_common.models import Business, User, UserRole
from prosaas_common.provision import provision_business
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


PASSWORD = "correct horse battery staple"


async def auth_for(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    """Sign in as an API client; the bearer header for later requests."""
    response = await client.post(
        "/api/auth/login", json={"email": email, "password": password, "client": "api"}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@dataclass(frozen=True)
class Account:
    user_id: int
    business_id: int | None
    email: str
    password: str = PASSWORD


@pytest.fixture
def make_account(db_engine: AsyncEngine) -> Callable[..., Awaitable[Account]]:
    """Create a user (and, except for system admins, a business) directly in the database."""

    async def make(
        email: str = "owner@dental.example",
        role: UserRole = UserRole.OWNER,
        *,
        user_active: bool = True,
        business_active: bool = True,
        business_id: int | None = None,
    ) -> Account:
        async with unit_of_work(create_session_factory(db_engine)) as db:
            if role is not UserRole.SYSTEM_ADMIN and business_id is None:
                business = Business(name=f"Business of {email}", is_active=business_active)
                db.add(business)
                await db.flush()
                await provision_business(db, business)
                business_id = business.id
            user = User(
                email=email,
                role=role,
                business_id=None if role is UserRole.SYSTEM_ADMIN else business_id,
                password_hash=hash_password(PASSWORD),
                is_active=user_active,
            )
            db.add(user)
            await db.flush()
            return Account(user.id, user.business_id, email)

    return make
