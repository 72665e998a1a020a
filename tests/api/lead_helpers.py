"""Shared steps of the leads tests: a team of one business signed in, and lead creation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from prosaas_common.models import UserRole
from tests.api.conftest import Account, auth_for

MakeAccount = Callable[..., Awaitable[Account]]


@dataclass
class Team:
    business_id: int
    owner: dict[str, str]
    admin: dict[str, str]
    agent: dict[str, str]
    agent_user_id: int
    admin_user_id: int


async def signed_in_team(
    client: httpx.AsyncClient, make_account: MakeAccount, domain: str = "dental.example"
) -> Team:
    owner = await make_account(f"owner@{domain}")
    admin = await make_account(f"admin@{domain}", UserRole.ADMIN, business_id=owner.business_id)
    agent = await make_account(f"agent@{domain}", UserRole.AGENT, business_id=owner.business_id)
    assert owner.business_id is not None
    return Team(
        business_id=owner.business_id,
        owner=await auth_for(client, owner.email),
        admin=await auth_for(client, admin.email),
        agent=await auth_for(client, agent.email),
        agent_user_id=agent.user_id,
        admin_user_id=admin.user_id,
    )


async def create_lead(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/api/leads", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    data: dict[str, Any] = response.json()
    return data


async def statuses(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/lead-statuses", headers=headers)
    assert response.status_code == 200, response.text
    return {s["key"]: s for s in response.json()}


def error_fields(response: httpx.Response) -> set[str]:
    """The field names a 422 reports (last part of each error's loc)."""
    assert response.status_code == 422, response.text
    return {str(error["loc"][-1]) for error in response.json()["detail"]}
