"""The people of a business: invitations, roles under the owner rules, deactivation, and isolation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import Queue
from prosaas_common.models import OutboundEmail, UserRole
from tests.api.conftest import PASSWORD, Account, auth_for

MakeAccount = Callable[..., Awaitable[Account]]


async def team(make_account: MakeAccount) -> dict[str, Account]:
    owner = await make_account("owner@dental.example")
    business = owner.business_id
    return {
        "owner": owner,
        "admin": await make_account("admin@dental.example", UserRole.ADMIN, business_id=business),
        "agent": await make_account("agent@dental.example", UserRole.AGENT, business_id=business),
    }


async def test_invite_sends_a_set_password_link_and_lists_the_user(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    people = await team(make_account)
    admin = await auth_for(client, people["admin"].email)
    invited = await client.post(
        "/api/users",
        json={"email": "new.agent@dental.example", "full_name": "Sam", "role": "agent"},
        headers=admin,
    )
    assert invited.status_code == 201, invited.text
    assert (invited.json()["role"], invited.json()["invited"]) == ("agent", True)
    async with db_engine.connect() as conn:
        [email] = (await conn.execute(select(OutboundEmail.id, OutboundEmail.to_address))).all()
    assert email.to_address == "new.agent@dental.example"
    assert await pool.zrange(Queue.HIGH.value, 0, -1) == [f"email:{email.id}".encode()]
    listed = (await client.get("/api/users", headers=admin)).json()["items"]
    assert [u["email"] for u in listed] == [
        "owner@dental.example",
        "admin@dental.example",
        "agent@dental.example",
        "new.agent@dental.example",
    ]
    taken = await client.post("/api/users", json={"email": "OWNER@dental.example"}, headers=admin)
    assert taken.status_code == 409


async def test_only_owners_make_or_unmake_owners(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    people = await team(make_account)
    admin, owner = (
        await auth_for(client, people["admin"].email),
        await auth_for(client, people["owner"].email),
    )
    new_owner = {"email": "partner@dental.example", "role": "owner"}
    assert (await client.post("/api/users", json=new_owner, headers=admin)).status_code == 403
    promote = {"role": "owner"}
    agent_id = people["agent"].user_id
    assert (await client.patch(f"/api/users/{agent_id}", json=promote, headers=admin)).status_code == 403
    assert (await client.patch(f"/api/users/{agent_id}", json=promote, headers=owner)).json()[
        "role"
    ] == "owner"
    demote_owner = await client.patch(
        f"/api/users/{people['owner'].user_id}", json={"role": "admin"}, headers=admin
    )
    assert demote_owner.status_code == 403
    agent = await auth_for(client, people["agent"].email)  # now an owner
    assert (await client.get("/api/users", headers=agent)).status_code == 200


async def test_the_last_owner_stays(client: httpx.AsyncClient, make_account: MakeAccount) -> None:
    people = await team(make_account)
    owner = await auth_for(client, people["owner"].email)
    owner_id = people["owner"].user_id
    demoted = await client.patch(f"/api/users/{owner_id}", json={"role": "admin"}, headers=owner)
    assert demoted.status_code == 409
    assert demoted.json()["detail"] == "a business needs at least one active owner"
    assert (await client.post(f"/api/users/{owner_id}/deactivate", headers=owner)).status_code == 409
    # With a second owner the first may step down.
    await client.patch(f"/api/users/{people['admin'].user_id}", json={"role": "owner"}, headers=owner)
    assert (
        await client.patch(f"/api/users/{owner_id}", json={"role": "admin"}, headers=owner)
    ).status_code == 200


async def test_agents_cannot_manage_users(client: httpx.AsyncClient, make_account: MakeAccount) -> None:
    people = await team(make_account)
    agent = await auth_for(client, people["agent"].email)
    assert (await client.get("/api/users", headers=agent)).status_code == 403
    assert (
        await client.post("/api/users", json={"email": "x@dental.example"}, headers=agent)
    ).status_code == 403


async def test_deactivation_ends_the_users_sessions(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    people = await team(make_account)
    admin = await auth_for(client, people["admin"].email)
    agent = await auth_for(client, people["agent"].email)
    off = await client.post(f"/api/users/{people['agent'].user_id}/deactivate", headers=admin)
    assert off.json()["is_active"] is False
    assert (await client.get("/api/auth/me", headers=agent)).status_code == 401
    login: dict[str, Any] = {"email": people["agent"].email, "password": PASSWORD, "client": "api"}
    assert (await client.post("/api/auth/login", json=login)).status_code == 401
    assert (
        await client.post(f"/api/users/{people['agent'].user_id}/activate", headers=admin)
    ).status_code == 200
    assert (await client.post("/api/auth/login", json=login)).status_code == 200


async def test_another_business_users_are_404_never_403(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    people = await team(make_account)
    stranger = await make_account("owner@other.example")
    theirs = await auth_for(client, stranger.email)
    for method, path, body in (
        ("PATCH", f"/api/users/{people['agent'].user_id}", {"role": "admin"}),
        ("POST", f"/api/users/{people['agent'].user_id}/deactivate", None),
        ("POST", f"/api/users/{people['owner'].user_id}/activate", None),
    ):
        response = await client.request(method, path, json=body, headers=theirs)
        assert response.status_code == 404, path
    listed = (await client.get("/api/users", headers=theirs)).json()["items"]
    assert [u["email"] for u in listed] == ["owner@other.example"]


async def test_nobody_deactivates_their_own_account(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    people = await team(make_account)
    await make_account("owner2@dental.example", UserRole.OWNER, business_id=people["owner"].business_id)
    owner = await auth_for(client, people["owner"].email)
    response = await client.post(f"/api/users/{people['owner'].user_id}/deactivate", headers=owner)
    assert response.status_code == 409
    assert (await client.get("/api/auth/me", headers=owner)).status_code == 200
