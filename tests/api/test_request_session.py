"""The request boundary owns the transaction: commit before responding, roll back on error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_api.app import create_app
from prosaas_api.settings import ApiSettings
from prosaas_common.models import Business, User, UserRole
from prosaas_common.web import DbSession
from tests.support import asgi_client


@pytest.fixture
async def client(
    make_settings: Callable[..., ApiSettings], db_engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings())

    @app.post("/test/businesses")
    async def create_business(name: str, session: DbSession) -> dict[str, str]:
        session.add(Business(name=name))
        if name == "refuse":
            raise HTTPException(status_code=422, detail="refused after adding")
        return {"created": name}

    @app.post("/test/admins")
    async def create_admin(email: str, session: DbSession) -> dict[str, str]:
        session.add(User(email=email, role=UserRole.SYSTEM_ADMIN))
        return {"created": email}  # no flush: a constraint violation only shows at commit

    async with asgi_client(app) as http:
        yield http


async def count(engine: AsyncEngine, model: type[Business] | type[User]) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_successful_request_is_committed(client: httpx.AsyncClient, db_engine: AsyncEngine) -> None:
    response = await client.post("/test/businesses", params={"name": "Dental"})
    assert response.status_code == 200
    assert await count(db_engine, Business) == 1


async def test_a_failed_request_is_rolled_back(client: httpx.AsyncClient, db_engine: AsyncEngine) -> None:
    response = await client.post("/test/businesses", params={"name": "refuse"})
    assert response.status_code == 422
    assert await count(db_engine, Business) == 0


async def test_a_failing_commit_is_never_answered_as_success(
    client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    """The commit runs before the response: when it fails, the client sees an error, not 200."""
    assert (await client.post("/test/admins", params={"email": "a@example.com"})).status_code == 200
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    as_a_real_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=transport.app, raise_app_exceptions=False),
        base_url="http://testserver",
    )
    async with as_a_real_client:
        response = await as_a_real_client.post("/test/admins", params={"email": "A@example.com"})
    assert response.status_code == 500
    assert await count(db_engine, User) == 1
