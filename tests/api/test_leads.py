"""Leads: create deduplicated by phone, validation, read/update/delete, filters, search and keyset pages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.models import Business, Lead
from tests.api.lead_helpers import MakeAccount, create_lead, error_fields, signed_in_team, statuses


async def test_phone_is_stored_in_e164_and_a_repeated_phone_updates_the_same_lead(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    first = await client.post(
        "/api/leads", json={"name": "Ada King Lovelace", "phone": "(415) 555-0132"}, headers=team.agent
    )
    assert first.status_code == 201, first.text
    lead = first.json()
    assert (lead["phone"], lead["first_name"], lead["last_name"]) == ("+14155550132", "Ada", "King Lovelace")
    assert lead["created"] is True
    assert first.headers["location"] == f"/api/leads/{lead['id']}"
    assert lead["status"]["key"] == "new"

    again = await client.post(
        "/api/leads",
        json={
            "first_name": "Someone",
            "phone": "+1 415 555 0132",
            "email": "ADA@Example.com",
            "tags": ["VIP"],
        },
        headers=team.agent,
    )
    assert again.status_code == 200, again.text
    merged = again.json()
    assert merged["id"] == lead["id"]
    assert merged["created"] is False
    # Empty fields are filled, existing ones kept, tags merged.
    assert (merged["first_name"], merged["email"], merged["tags"]) == ("Ada", "ada@example.com", ["vip"])
    async with db_engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(Lead)) == 1


async def test_national_numbers_are_read_in_the_business_region(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    async with db_engine.begin() as conn:
        await conn.execute(update(Business).values(default_region="DE"))
    lead = await create_lead(client, team.agent, name="Jonas", phone="030 12345678")
    assert lead["phone"] == "+493012345678"


async def test_concurrent_creates_of_one_phone_make_one_lead(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    answers = await asyncio.gather(
        *(
            client.post(
                "/api/leads", json={"name": f"Caller {i}", "phone": "+14155550199"}, headers=team.agent
            )
            for i in range(6)
        )
    )
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    async with db_engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(Lead)) == 1


async def test_bad_input_answers_422_naming_the_field(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    other = await signed_in_team(client, make_account, domain="other.example")
    foreign_status = (await statuses(client, other.owner))["won"]["id"]
    cases = [
        ({"name": "A", "phone": "12"}, "phone"),
        ({"name": "A", "email": "not-an-address"}, "email"),
        ({"company": "Only a company"}, "name"),
        ({"name": "A", "status_id": foreign_status}, "status_id"),
        ({"name": "A", "owner_user_id": other.agent_user_id}, "owner_user_id"),
        ({"name": "A", "tags": ["ok", "!!"]}, "tags"),
        ({"name": "A", "fields": {"nested": {"x": 1}}}, "fields"),
        ({"name": "A", "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        response = await client.post("/api/leads", json=body, headers=team.agent)
        assert field in error_fields(response), (body, response.text)


async def test_read_update_and_delete(client: httpx.AsyncClient, make_account: MakeAccount) -> None:
    team = await signed_in_team(client, make_account)
    lead = await create_lead(client, team.agent, name="Grace Hopper", phone="+14155550100")
    other = await create_lead(client, team.agent, name="Alan Turing", phone="+14155550101")

    read = await client.get(f"/api/leads/{lead['id']}", headers=team.agent)
    assert read.json()["full_name"] == "Grace Hopper"
    changed = await client.patch(
        f"/api/leads/{lead['id']}",
        json={"company": "Navy", "owner_user_id": team.agent_user_id, "email": None},
        headers=team.agent,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["company"], changed.json()["owner_user_id"]) == ("Navy", team.agent_user_id)

    taken = await client.patch(
        f"/api/leads/{lead['id']}", json={"phone": "(415) 555-0101"}, headers=team.agent
    )
    assert taken.status_code == 409
    assert taken.json()["detail"]["lead_id"] == other["id"]

    assert (await client.delete(f"/api/leads/{lead['id']}", headers=team.agent)).status_code == 403
    assert (await client.delete(f"/api/leads/{lead['id']}", headers=team.admin)).status_code == 204
    assert (await client.get(f"/api/leads/{lead['id']}", headers=team.agent)).status_code == 404


async def test_another_business_sees_404_for_a_lead(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    stranger = await signed_in_team(client, make_account, domain="other.example")
    lead = await create_lead(client, team.agent, name="Private", phone="+14155550111")
    target = (await statuses(client, stranger.owner))["won"]["id"]
    assert (await client.get(f"/api/leads/{lead['id']}", headers=stranger.owner)).status_code == 404
    assert (
        await client.patch(f"/api/leads/{lead['id']}", json={"company": "x"}, headers=stranger.owner)
    ).status_code == 404
    move = await client.post(
        f"/api/leads/{lead['id']}/move", json={"status_id": target}, headers=stranger.owner
    )
    assert move.status_code == 404
    assert (await client.delete(f"/api/leads/{lead['id']}", headers=stranger.owner)).status_code == 404
    listed = await client.get("/api/leads", headers=stranger.owner)
    assert listed.json()["items"] == []


async def test_filters_and_search(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    won = (await statuses(client, team.owner))["won"]["id"]
    grace = await create_lead(
        client,
        team.agent,
        name="Grace Hopper",
        phone="+14155550100",
        email="grace@navy.example",
        source="webhook",
        tags=["vip", "navy"],
        owner_user_id=team.agent_user_id,
    )
    alan = await create_lead(
        client, team.agent, name="Alan Turing", phone="+442071838750", source="call", tags=["vip"]
    )
    ada = await create_lead(
        client, team.agent, name="Ada Lovelace", email="ada@engine.example", status_id=won
    )
    async with db_engine.begin() as conn:  # Ada came in last week
        await conn.execute(
            text("UPDATE leads SET created_at = now() - interval '7 days' WHERE id = :id"), {"id": ada["id"]}
        )

    async def ids(**params: Any) -> list[int]:
        response = await client.get("/api/leads", params=params, headers=team.agent)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids() == [alan["id"], grace["id"], ada["id"]]
    assert await ids(status_id=won) == [ada["id"]]
    assert await ids(source="call") == [alan["id"]]
    assert await ids(owner_user_id=team.agent_user_id) == [grace["id"]]
    assert await ids(unassigned=True) == [alan["id"], ada["id"]]
    assert await ids(tag=["vip", "navy"]) == [grace["id"]]
    assert await ids(tag="VIP") == [alan["id"], grace["id"]]
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert await ids(created_from=since) == [alan["id"], grace["id"]]
    assert await ids(created_to=since) == [ada["id"]]
    assert await ids(q="hopper") == [grace["id"]]
    assert await ids(q="grace navy") == [grace["id"]]
    assert await ids(q="(415) 555-0100") == [grace["id"]]
    assert await ids(q="4155550100") == [grace["id"]]
    assert await ids(q="0207 183") == []  # national UK digits are not in the E.164 form
    assert await ids(q="2071838750") == [alan["id"]]
    assert await ids(q="ENGINE.example") == [ada["id"]]
    assert await ids(q="100%") == []
    assert await ids(sort="created_at") == [ada["id"], grace["id"], alan["id"]]
    count = await client.get("/api/leads/count", params={"tag": "vip"}, headers=team.agent)
    assert count.json() == {"count": 2}


async def test_keyset_pages_are_stable_while_leads_arrive(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    created = [
        await create_lead(client, team.agent, name=f"Lead {i}", phone=f"+1415555{1000 + i}") for i in range(7)
    ]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/leads", params=params, headers=team.agent)).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        if pages == 1:  # a lead arriving mid-way does not shift the pages after
            await create_lead(client, team.agent, name="Latecomer", phone="+14155559999")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [lead["id"] for lead in reversed(created)]
    assert pages == 3

    bad = await client.get("/api/leads", params={"cursor": "garbage"}, headers=team.agent)
    assert "cursor" in error_fields(bad)
    first = (await client.get("/api/leads", params={"limit": 1}, headers=team.agent)).json()
    other_sort = await client.get(
        "/api/leads", params={"cursor": first["next_cursor"], "sort": "updated_at"}, headers=team.agent
    )
    assert "cursor" in error_fields(other_sort)


async def test_list_items_have_the_shape_of_a_single_lead(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    lead = await create_lead(
        client, team.agent, name="Grace Hopper", phone="+14155550100", tags=["vip"], fields={"visits": 3}
    )
    single = (await client.get(f"/api/leads/{lead['id']}", headers=team.agent)).json()
    listed = (await client.get("/api/leads", headers=team.agent)).json()["items"]
    assert listed == [single]
