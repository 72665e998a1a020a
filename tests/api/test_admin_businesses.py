"""Businesses as platform staff manage them: one-transaction creation with owner invitation, statuses and
numbers; conflicts; listing; updates; deactivation ending its users' sessions."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import Queue
from prosaas_common.models import AuditEvent, LeadStatus, OutboundEmail, User, UserRole
from tests.api.conftest import PASSWORD, Account, auth_for

MakeAccount = Callable[..., Awaitable[Account]]
OWNER_PASSWORD = "the owner's own passphrase"


def new_business(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Bright Smiles Dental",
        "timezone": "America/New_York",
        "default_region": "US",
        "phone_numbers": ["(415) 555-2671", "+1 212 555 0199"],
        "owner": {"email": "dr.lee@brightsmiles.example", "full_name": "Dr. Lee"},
        **overrides,
    }


@pytest.fixture
async def admin(client: httpx.AsyncClient, make_account: MakeAccount) -> dict[str, str]:
    await make_account("root@platform.example", UserRole.SYSTEM_ADMIN)
    return await auth_for(client, "root@platform.example")


async def test_create_business_with_owner_statuses_and_numbers(
    client: httpx.AsyncClient, admin: dict[str, str], db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    created = await client.post("/api/admin/businesses", json=new_business(), headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "Bright Smiles Dental"
    assert body["timezone"] == "America/New_York"
    assert body["phone_numbers"] == ["+14155552671", "+12125550199"]

    async with db_engine.connect() as conn:
        statuses = (
            await conn.execute(
                select(LeadStatus.key, LeadStatus.is_default, LeadStatus.is_system)
                .where(LeadStatus.business_id == body["id"])
                .order_by(LeadStatus.position)
            )
        ).all()
        owner = (await conn.execute(select(User).where(User.business_id == body["id"]))).one()
        [invitation] = (await conn.execute(select(OutboundEmail))).all()
        [audit] = (await conn.execute(select(AuditEvent.action, AuditEvent.entity_id))).all()
    assert [s.key for s in statuses] == ["new", "contacted", "qualified", "won", "lost"]
    assert [s.key for s in statuses if s.is_default] == ["new"]
    assert all(s.is_system for s in statuses)
    assert (owner.role, owner.password_hash, owner.full_name) == ("owner", None, "Dr. Lee")
    assert invitation.to_address == "dr.lee@brightsmiles.example"
    assert "Bright Smiles Dental" in invitation.subject
    assert await pool.zrange(Queue.HIGH.value, 0, -1) == [f"email:{invitation.id}".encode()]
    assert tuple(audit) == ("business.created", str(body["id"]))

    # The owner follows the invitation link, chooses a password and signs in to their business.
    token = re.search(r"#token=([A-Za-z0-9_-]+)", invitation.body_text)
    assert token
    chosen = await client.post(
        "/api/auth/reset", json={"token": token.group(1), "new_password": OWNER_PASSWORD}
    )
    assert chosen.status_code == 204
    me = await client.get("/api/auth/me", headers=await auth_for(client, owner.email, OWNER_PASSWORD))
    assert me.json()["business"] == {"id": body["id"], "name": "Bright Smiles Dental"}


async def test_taken_owner_email_or_number_is_a_409_and_nothing_is_created(
    client: httpx.AsyncClient, admin: dict[str, str], db_engine: AsyncEngine
) -> None:
    assert (await client.post("/api/admin/businesses", json=new_business(), headers=admin)).status_code == 201
    same_owner = new_business(phone_numbers=[])
    clash = await client.post("/api/admin/businesses", json=same_owner, headers=admin)
    assert clash.status_code == 409
    assert clash.json()["detail"]["field"] == "owner.email"
    same_number = new_business(owner={"email": "other@example.com"}, phone_numbers=["415-555-2671"])
    clash = await client.post("/api/admin/businesses", json=same_number, headers=admin)
    assert clash.status_code == 409
    assert clash.json()["detail"]["phone_numbers"] == ["+14155552671"]
    async with db_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM businesses")) == 1, "only the first creation"
        assert await conn.scalar(text("SELECT count(*) FROM users WHERE role = 'owner'")) == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"phone_numbers": ["555"]}, "phone_numbers"),
        ({"phone_numbers": ["+14155552671", "(415) 555-2671"]}, "phone_numbers"),
        ({"timezone": "Atlantis/Capital"}, "timezone"),
        ({"default_region": "XX"}, "default_region"),
        ({"owner": {"email": "nope"}}, "email"),
        ({"name": ""}, "name"),
    ],
)
async def test_bad_input_is_a_422_on_its_field(
    client: httpx.AsyncClient, admin: dict[str, str], overrides: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/admin/businesses", json=new_business(**overrides), headers=admin)
    assert response.status_code == 422
    assert [error["loc"][-1] for error in response.json()["detail"]] == [field]


async def test_only_platform_staff_manage_businesses(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    owner = await make_account()
    headers = await auth_for(client, owner.email)
    assert (
        await client.post("/api/admin/businesses", json=new_business(), headers=headers)
    ).status_code == 403
    assert (await client.get("/api/admin/businesses", headers=headers)).status_code == 403
    assert (
        await client.get(f"/api/admin/businesses/{owner.business_id}", headers=headers)
    ).status_code == 403


async def test_list_search_page_get_and_update(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    ids = []
    for n, name in enumerate(("Alpha Plumbing", "Beta Dental", "Gamma Dental")):
        body = new_business(name=name, phone_numbers=[], owner={"email": f"owner{n}@example.com"})
        ids.append((await client.post("/api/admin/businesses", json=body, headers=admin)).json()["id"])
    first = (await client.get("/api/admin/businesses?limit=2", headers=admin)).json()
    assert [b["name"] for b in first["items"]] == ["Alpha Plumbing", "Beta Dental"]
    rest = (await client.get(f"/api/admin/businesses?after={first['next_after']}", headers=admin)).json()
    assert [b["name"] for b in rest["items"]] == ["Gamma Dental"]
    assert rest["next_after"] is None
    dental = (await client.get("/api/admin/businesses?q=DENTAL", headers=admin)).json()
    assert [b["name"] for b in dental["items"]] == ["Beta Dental", "Gamma Dental"]

    updated = await client.patch(f"/api/admin/businesses/{ids[0]}", json={"locale": "de"}, headers=admin)
    assert updated.json()["locale"] == "de"
    assert (await client.get(f"/api/admin/businesses/{ids[0]}", headers=admin)).json()["locale"] == "de"
    assert (await client.get("/api/admin/businesses/999999", headers=admin)).status_code == 404


async def test_deactivation_ends_its_users_sessions_until_reactivated(
    client: httpx.AsyncClient, admin: dict[str, str], make_account: MakeAccount
) -> None:
    owner = await make_account()
    headers = await auth_for(client, owner.email)
    off = await client.post(f"/api/admin/businesses/{owner.business_id}/deactivate", headers=admin)
    assert off.json()["is_active"] is False
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401
    login = {"email": owner.email, "password": PASSWORD, "client": "api"}
    assert (await client.post("/api/auth/login", json=login)).status_code == 401
    on = await client.post(f"/api/admin/businesses/{owner.business_id}/activate", headers=admin)
    assert on.json()["is_active"] is True
    assert (await client.post("/api/auth/login", json=login)).status_code == 200
