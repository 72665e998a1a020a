"""The principal's own business: read, update (audited), its audit trail, and no way into another's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from prosaas_common.models import UserRole
from tests.api.conftest import Account, auth_for

MakeAccount = Callable[..., Awaitable[Account]]


async def test_staff_read_and_managers_update_their_business(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    owner = await make_account()
    await make_account("agent@dental.example", UserRole.AGENT, business_id=owner.business_id)
    agent = await auth_for(client, "agent@dental.example")
    read = await client.get("/api/business/current", headers=agent)
    assert read.json() == {
        "id": owner.business_id,
        "name": "Business of owner@dental.example",
        "timezone": "UTC",
        "locale": "en",
        "default_region": "US",
        "is_active": True,
    }
    change = {"name": "Bright Smiles", "timezone": "Europe/Berlin", "locale": "de"}
    assert (await client.patch("/api/business/current", json=change, headers=agent)).status_code == 403
    manager = await auth_for(client, owner.email)
    updated = await client.patch("/api/business/current", json=change, headers=manager)
    assert updated.status_code == 200
    assert {k: updated.json()[k] for k in change} == change
    assert (await client.get("/api/business/current", headers=agent)).json()["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"name": "   "}, "name"),
        ({"locale": "english"}, "locale"),
        ({"is_active": False}, "is_active"),
    ],
)
async def test_bad_updates_are_422_on_the_field(
    client: httpx.AsyncClient, make_account: MakeAccount, body: dict[str, Any], field: str
) -> None:
    owner = await make_account()
    response = await client.patch(
        "/api/business/current", json=body, headers=await auth_for(client, owner.email)
    )
    assert response.status_code == 422
    assert [error["loc"][-1] for error in response.json()["detail"]] == [field]


async def test_platform_staff_must_impersonate_first(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    admin = await make_account("root@platform.example", UserRole.SYSTEM_ADMIN)
    response = await client.get("/api/business/current", headers=await auth_for(client, admin.email))
    assert response.status_code == 403


async def test_the_audit_trail_is_per_business_newest_first_and_paginated(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    first = await make_account("owner@first.example")
    second = await make_account("owner@second.example")
    first_auth, second_auth = await auth_for(client, first.email), await auth_for(client, second.email)
    for name in ("One", "Two", "Three"):
        await client.patch("/api/business/current", json={"name": name}, headers=first_auth)
    await client.patch("/api/business/current", json={"name": "Other"}, headers=second_auth)

    page = (await client.get("/api/business/current/audit?limit=2", headers=first_auth)).json()
    assert [e["details"]["after"]["name"] for e in page["items"]] == ["Three", "Two"]
    assert page["items"][0]["actor_user_id"] == first.user_id
    assert page["items"][0]["details"]["before"] == {"name": "Two"}
    rest = (
        await client.get(f"/api/business/current/audit?before={page['next_before']}", headers=first_auth)
    ).json()
    assert [e["details"]["after"]["name"] for e in rest["items"]] == ["One"]
    assert rest["next_before"] is None

    other = (await client.get("/api/business/current/audit", headers=second_auth)).json()
    assert [e["details"]["after"]["name"] for e in other["items"]] == ["Other"], (
        "no event of another business"
    )
