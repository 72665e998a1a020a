"""A system admin acting as a business: who is who in `me`, permissions, refresh, exit, audit trail."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import httpx
from fastapi import Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_api.app import create_app
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.settings import ApiSettings
from prosaas_common.models import AuditEvent, UserRole
from tests.api.conftest import PASSWORD, Account
from tests.support import asgi_client

MakeAccount = Callable[..., Awaitable[Account]]


async def sign_in(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    response = await client.post(
        "/api/auth/login", json={"email": email, "password": PASSWORD, "client": "api"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def audit_trail(engine: AsyncEngine) -> list[tuple[str, int | None, int | None, bool, dict[str, Any]]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                AuditEvent.action,
                AuditEvent.actor_user_id,
                AuditEvent.business_id,
                AuditEvent.impersonated,
                AuditEvent.details,
            ).order_by(AuditEvent.id)
        )
        return [tuple(row) for row in rows]


async def test_impersonation_round_trip_with_its_audit_trail(
    make_settings: Callable[..., ApiSettings], make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    app = create_app(make_settings())

    @app.post("/test/leads")
    async def write_lead(
        principal: Annotated[Principal, Depends(require(Permission.LEADS_WRITE))],
    ) -> dict[str, int]:
        return {"business_id": principal.business_id or 0}

    admin = await make_account("root@platform.example", UserRole.SYSTEM_ADMIN)
    owner = await make_account("owner@dental.example")
    async with asgi_client(app) as client:
        tokens = await sign_in(client, admin.email)
        assert (await client.post("/test/leads", headers=bearer(tokens))).status_code == 403

        started = await client.post(
            f"/api/admin/businesses/{owner.business_id}/impersonate", headers=bearer(tokens)
        )
        assert started.status_code == 200, started.text
        acting = started.json()
        me = (await client.get("/api/auth/me", headers=bearer(acting))).json()
        assert me["id"] == admin.user_id
        assert me["role"] == "system_admin"
        assert me["impersonating"] is True
        assert me["acting_role"] == "owner"
        assert me["business"]["id"] == owner.business_id

        wrote = await client.post("/test/leads", headers=bearer(acting))
        assert wrote.json() == {"business_id": owner.business_id}
        again = await client.post(
            f"/api/admin/businesses/{owner.business_id}/impersonate", headers=bearer(acting)
        )
        assert again.status_code == 403, "an impersonating session acts as an owner, not as platform staff"

        refreshed = await client.post("/api/auth/refresh", json={"refresh_token": acting["refresh_token"]})
        assert refreshed.json()["user"]["impersonating"] is True, "a refresh keeps acting for the business"
        old_refresh = await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert old_refresh.status_code == 401, "the pre-impersonation refresh token was dropped"

        ended = await client.post("/api/admin/impersonate/exit", headers=bearer(refreshed.json()))
        assert ended.status_code == 200
        back = ended.json()
        assert back["user"]["impersonating"] is False
        assert back["user"]["business"] is None
        assert (await client.post("/api/admin/impersonate/exit", headers=bearer(back))).status_code == 409

    trail = await audit_trail(db_engine)
    business = owner.business_id
    assert trail == [
        ("impersonation.started", admin.user_id, None, False, {}),
        ("impersonated.request", admin.user_id, business, True, {"method": "POST", "path": "/test/leads"}),
        (
            "impersonated.request",
            admin.user_id,
            business,
            True,
            {"method": "POST", "path": f"/api/admin/businesses/{business}/impersonate"},
        ),
        (
            "impersonated.request",
            admin.user_id,
            business,
            True,
            {"method": "POST", "path": "/api/admin/impersonate/exit"},
        ),
        ("impersonation.ended", admin.user_id, business, True, {}),
    ]


async def test_only_system_admins_impersonate_and_only_active_businesses(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    admin = await make_account("root@platform.example", UserRole.SYSTEM_ADMIN)
    owner = await make_account("owner@dental.example")
    closed = await make_account("owner@closed.example", business_active=False)
    owner_tokens = await sign_in(client, owner.email)
    refused = await client.post(
        f"/api/admin/businesses/{owner.business_id}/impersonate", headers=bearer(owner_tokens)
    )
    assert refused.status_code == 403
    admin_tokens = await sign_in(client, admin.email)
    for business_id in (closed.business_id, 999_999):
        missing = await client.post(
            f"/api/admin/businesses/{business_id}/impersonate", headers=bearer(admin_tokens)
        )
        assert missing.status_code == 404


async def test_browser_impersonation_swaps_the_cookies(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    admin = await make_account("root@platform.example", UserRole.SYSTEM_ADMIN)
    owner = await make_account("owner@dental.example")
    login = await client.post("/api/auth/login", json={"email": admin.email, "password": PASSWORD})
    csrf = login.json()["csrf_token"]
    started = await client.post(
        f"/api/admin/businesses/{owner.business_id}/impersonate", headers={"X-CSRF-Token": csrf}
    )
    assert started.status_code == 200
    assert started.json()["client"] == "browser"
    me = (await client.get("/api/auth/me")).json()
    assert me["impersonating"] is True
    assert me["business"]["id"] == owner.business_id
