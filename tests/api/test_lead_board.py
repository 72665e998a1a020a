"""Statuses and the kanban: moves keep one consistent order (also concurrently), every status change is
recorded (history, timeline, ``lead.status_changed`` event enqueued after commit), status rules."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.events import event_job_id
from prosaas_common.jobs import Queue
from prosaas_common.models import DomainEvent, Lead, LeadStatusChange
from tests.api.lead_helpers import MakeAccount, Team, create_lead, error_fields, signed_in_team, statuses


async def column(client: httpx.AsyncClient, team: Team, key: str) -> list[int]:
    board = (await client.get("/api/leads/board", headers=team.agent)).json()
    for col in board["columns"]:
        if col["status"]["key"] == key:
            assert col["count"] == len(col["leads"])
            return [lead["id"] for lead in col["leads"]]
    raise AssertionError(key)


async def move(
    client: httpx.AsyncClient, team: Team, lead_id: int, status_id: int, position: int
) -> httpx.Response:
    return await client.post(
        f"/api/leads/{lead_id}/move", json={"status_id": status_id, "position": position}, headers=team.agent
    )


async def test_moves_place_leads_where_they_were_dropped(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    keys = await statuses(client, team.owner)
    leads = [await create_lead(client, team.agent, name=name) for name in ("A", "B", "C", "D")]
    ids = [lead["id"] for lead in leads]
    assert await column(client, team, "new") == ids[::-1]  # newest first

    contacted = keys["contacted"]["id"]
    for lead_id, position in ((ids[0], 0), (ids[1], 1), (ids[2], 1), (ids[3], 99)):
        response = await move(client, team, lead_id, contacted, position)
        assert response.status_code == 200, response.text
    assert await column(client, team, "contacted") == [ids[0], ids[2], ids[1], ids[3]]
    assert await column(client, team, "new") == []
    # Within one column: to the top.
    await move(client, team, ids[3], contacted, 0)
    assert await column(client, team, "contacted") == [ids[3], ids[0], ids[2], ids[1]]

    unknown = await move(client, team, ids[0], 10**9, 0)
    assert "status_id" in error_fields(unknown)


async def test_concurrent_moves_into_one_column_never_tie(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    qualified = (await statuses(client, team.owner))["qualified"]["id"]
    ids = [(await create_lead(client, team.agent, name=f"L{i}"))["id"] for i in range(12)]
    answers = await asyncio.gather(
        *(move(client, team, lead_id, qualified, i % 3) for i, lead_id in enumerate(ids))
    )
    assert [a.status_code for a in answers] == [200] * 12
    async with db_engine.connect() as conn:
        ranks = list(await conn.scalars(select(Lead.rank).where(Lead.status_id == qualified)))
    assert len(ranks) == 12
    assert len(set(ranks)) == 12, "two moves computed the same place"


async def test_rank_gaps_are_renumbered_when_exhausted(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    won = (await statuses(client, team.owner))["won"]["id"]
    ids = [(await create_lead(client, team.agent, name=f"L{i}"))["id"] for i in range(4)]
    await move(client, team, ids[0], won, 0)
    await move(client, team, ids[1], won, 1)
    # Dropping two leads in turn at place 1 halves the gap after the first lead every time; after
    # ~30 halvings the column must be renumbered to make room.
    for _ in range(40):
        for lead_id in (ids[2], ids[3]):
            assert (await move(client, team, lead_id, won, 1)).status_code == 200
    assert await column(client, team, "won") == [ids[0], ids[3], ids[2], ids[1]]
    async with db_engine.connect() as conn:
        ranks = list(await conn.scalars(select(Lead.rank).where(Lead.status_id == won).order_by(Lead.rank)))
    assert min(b - a for a, b in itertools.pairwise(ranks)) > 1e-9


async def test_a_status_change_is_recorded_and_its_event_enqueued_after_commit(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    team = await signed_in_team(client, make_account)
    keys = await statuses(client, team.owner)
    lead = await create_lead(client, team.agent, name="Grace", phone="+14155550100")
    changed = await client.patch(
        f"/api/leads/{lead['id']}", json={"status_id": keys["won"]["id"]}, headers=team.agent
    )
    assert changed.json()["status"]["key"] == "won"
    # A move within the column is not a status change.
    await move(client, team, lead["id"], keys["won"]["id"], 0)

    history = (await client.get(f"/api/leads/{lead['id']}/status-history", headers=team.agent)).json()
    assert [(h["from_status_key"], h["to_status_key"], h["via"]) for h in history] == [("new", "won", "api")]
    async with db_engine.connect() as conn:
        events = list(
            await conn.execute(
                select(DomainEvent.id, DomainEvent.type, DomainEvent.payload).order_by(DomainEvent.id)
            )
        )
        assert await conn.scalar(select(LeadStatusChange.actor_user_id)) == team.agent_user_id
    assert [e.type for e in events] == ["lead.created", "lead.status_changed"]
    payload: dict[str, Any] = events[1].payload
    assert (payload["from"]["key"], payload["to"]["key"], payload["lead"]["phone"]) == (
        "new",
        "won",
        "+14155550100",
    )
    queued = {job.job_id for job in await pool.queued_jobs(queue_name=Queue.DEFAULT.value)}
    assert {event_job_id(e.id) for e in events} <= queued


async def test_a_failed_request_enqueues_no_event(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    team = await signed_in_team(client, make_account)
    won = (await statuses(client, team.owner))["won"]["id"]
    lead = await create_lead(client, team.agent, name="Grace", phone="+14155550100")
    await create_lead(client, team.agent, name="Alan", phone="+14155550101")
    # The status change runs first, then the phone conflict rolls the whole request back.
    response = await client.patch(
        f"/api/leads/{lead['id']}", json={"status_id": won, "phone": "+14155550101"}, headers=team.agent
    )
    assert response.status_code == 409
    async with db_engine.connect() as conn:
        types = list(await conn.scalars(select(DomainEvent.type)))
    assert types == ["lead.created", "lead.created"]
    assert len(await pool.queued_jobs(queue_name=Queue.DEFAULT.value)) == 2


async def test_status_rules(client: httpx.AsyncClient, make_account: MakeAccount) -> None:
    team = await signed_in_team(client, make_account)
    made = await client.post(
        "/api/lead-statuses", json={"name": "Follow up!", "color": "#112233"}, headers=team.admin
    )
    assert made.status_code == 201, made.text
    custom = made.json()
    assert (custom["key"], custom["position"], custom["is_system"]) == ("follow_up", 5, False)
    assert (
        await client.post("/api/lead-statuses", json={"name": "Follow-up"}, headers=team.admin)
    ).status_code == 409
    assert (
        await client.post("/api/lead-statuses", json={"name": "X"}, headers=team.agent)
    ).status_code == 403
    assert "color" in error_fields(
        await client.post("/api/lead-statuses", json={"name": "Y", "color": "red"}, headers=team.admin)
    )

    keys = await statuses(client, team.owner)
    order = [keys[k]["id"] for k in ("won", "new", "follow_up", "contacted", "qualified", "lost")]
    reordered = await client.post("/api/lead-statuses/reorder", json={"ids": order}, headers=team.admin)
    assert [s["id"] for s in reordered.json()] == order
    assert [s["id"] for s in (await client.get("/api/lead-statuses", headers=team.agent)).json()] == order
    assert "ids" in error_fields(
        await client.post("/api/lead-statuses/reorder", json={"ids": order[:-1]}, headers=team.admin)
    )

    # One default at a time; the default cannot be deleted.
    await client.patch(f"/api/lead-statuses/{custom['id']}", json={"is_default": True}, headers=team.admin)
    keys = await statuses(client, team.owner)
    assert [k for k, s in keys.items() if s["is_default"]] == ["follow_up"]
    assert (await client.delete(f"/api/lead-statuses/{custom['id']}", headers=team.admin)).status_code == 409
    lead = await create_lead(client, team.agent, name="Lands in the default")
    assert lead["status"]["key"] == "follow_up"
    await client.patch(
        f"/api/lead-statuses/{keys['new']['id']}", json={"is_default": True}, headers=team.admin
    )

    # In use: a custom status hands its leads over; a system status refuses.
    in_use = await client.delete(f"/api/lead-statuses/{custom['id']}", headers=team.admin)
    assert in_use.status_code == 409
    assert in_use.json()["detail"]["lead_count"] == 1
    moved = await client.delete(
        f"/api/lead-statuses/{custom['id']}", params={"move_leads_to": keys["lost"]["id"]}, headers=team.admin
    )
    assert moved.status_code == 204
    assert (await client.get(f"/api/leads/{lead['id']}", headers=team.agent)).json()["status"][
        "key"
    ] == "lost"
    system = await client.delete(
        f"/api/lead-statuses/{keys['lost']['id']}",
        params={"move_leads_to": keys["won"]["id"]},
        headers=team.admin,
    )
    assert system.status_code == 409
    assert (
        await client.delete(f"/api/lead-statuses/{keys['qualified']['id']}", headers=team.admin)
    ).status_code == 204


async def test_notes_and_timeline(client: httpx.AsyncClient, make_account: MakeAccount) -> None:
    team = await signed_in_team(client, make_account)
    won = (await statuses(client, team.owner))["won"]["id"]
    lead = await create_lead(client, team.agent, name="Grace")
    base = f"/api/leads/{lead['id']}"
    note_ids = []
    for i in range(3):
        made = await client.post(f"{base}/notes", json={"body": f"note {i}"}, headers=team.agent)
        assert made.status_code == 201, made.text
        note_ids.append(made.json()["id"])
    admin_note = (
        await client.post(f"{base}/notes", json={"body": "from the admin"}, headers=team.admin)
    ).json()
    await move(client, team, lead["id"], won, 0)
    assert "body" in error_fields(await client.post(f"{base}/notes", json={"body": "  "}, headers=team.agent))

    first = (await client.get(f"{base}/notes", params={"limit": 2}, headers=team.agent)).json()
    second = (
        await client.get(f"{base}/notes", params={"before": first["next_before"]}, headers=team.agent)
    ).json()
    assert [n["id"] for n in first["items"] + second["items"]] == [admin_note["id"], *note_ids[::-1]]
    assert second["next_before"] is None

    # The author or an admin edits a note; another agent does not.
    assert (
        await client.patch(f"{base}/notes/{admin_note['id']}", json={"body": "x"}, headers=team.agent)
    ).status_code == 403
    assert (
        await client.patch(f"{base}/notes/{note_ids[0]}", json={"body": "edited"}, headers=team.agent)
    ).json()["body"] == "edited"
    assert (await client.delete(f"{base}/notes/{note_ids[1]}", headers=team.admin)).status_code == 204

    timeline = (await client.get(f"{base}/timeline", headers=team.agent)).json()
    kinds = [entry["kind"] for entry in timeline["items"]]
    assert kinds == ["status_changed", "note_added", "note_added", "note_added", "note_added", "created"]
    assert timeline["items"][0]["summary"] == "Status: New → Won"

    stranger = await signed_in_team(client, make_account, domain="other.example")
    assert (await client.get(f"{base}/notes", headers=stranger.owner)).status_code == 404
    assert (await client.get(f"{base}/timeline", headers=stranger.owner)).status_code == 404
    assert (
        await client.patch(f"{base}/notes/{note_ids[0]}", json={"body": "x"}, headers=stranger.owner)
    ).status_code == 404
