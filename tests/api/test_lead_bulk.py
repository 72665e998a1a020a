"""POST /api/leads/bulk: small id selections changed in the request, filters and large selections as
a background job run by the worker's ``leads_bulk``; another business's leads are never touched."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import Queue
from prosaas_common.models import DomainEvent, Lead, LeadStatusChange
from prosaas_common.settings import build_settings
from prosaas_worker.context import WorkerResources
from prosaas_worker.jobs import leads as lead_jobs
from prosaas_worker.settings import WorkerConfig
from tests.api.lead_helpers import MakeAccount, Team, signed_in_team
from tests.api.test_lead_export import add_leads, status_ids

RunJob = Callable[[str], Awaitable[str]]
BULK = "/api/leads/bulk"


@pytest.fixture
async def run_bulk(database_url: str, redis_url: str, pool: ArqRedis) -> AsyncIterator[RunJob]:
    resources = WorkerResources.create(
        build_settings(WorkerConfig, app_env="test", database_url=database_url, redis_url=redis_url)
    )

    async def run(job_id: str) -> str:
        ctx = resources.job_context(Queue.LOW)
        ctx.update(job_id=lead_jobs.bulk_job_id(job_id), job_try=1, redis=pool)
        return await lead_jobs.leads_bulk(ctx, job_id)

    yield run
    await resources.dispose()


async def two_businesses(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> tuple[Team, list[int], Team, list[int]]:
    """Team A with leads Ada, Bob, Cleo (tag vip on Ada and Cleo) and team B with one lead."""
    a = await signed_in_team(client, make_account)
    b = await signed_in_team(client, make_account, "bakery.example")
    a_ids = await add_leads(
        db_engine,
        pool,
        a.business_id,
        [
            {"first_name": "Ada", "phone": "+12125550100", "tags": ["vip"]},
            {"first_name": "Bob", "phone": "+12125550101"},
            {"first_name": "Cleo", "phone": "+12125550102", "tags": ["vip", "dental"]},
        ],
    )
    b_ids = await add_leads(db_engine, pool, b.business_id, [{"first_name": "Zed", "tags": ["vip"]}])
    return a, a_ids, b, b_ids


async def lead_rows(engine: AsyncEngine) -> dict[int, Any]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(Lead.id, Lead.status_id, Lead.owner_user_id, Lead.tags))
        return {row.id: row for row in rows}


async def test_small_selection_changes_status_in_the_request_with_history(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    a, a_ids, b, b_ids = await two_businesses(client, make_account, db_engine, pool)
    won = (await status_ids(db_engine, a.business_id))["won"]
    b_new = (await status_ids(db_engine, b.business_id))["new"]
    async with db_engine.connect() as conn:
        events_before = await conn.scalar(select(func.count()).select_from(DomainEvent))
    body = {
        "selection": {"ids": [a_ids[0], a_ids[2], b_ids[0], 999_999]},
        "action": "set_status",
        "status_id": won,
    }
    response = await client.post(BULK, json=body, headers=a.admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"action": "set_status", "matched": 2, "changed": 2}

    rows = await lead_rows(db_engine)
    assert [rows[i].status_id == won for i in a_ids] == [True, False, True]
    assert rows[b_ids[0]].status_id == b_new  # B's lead untouched
    async with db_engine.connect() as conn:
        history = (
            await conn.execute(
                select(LeadStatusChange.lead_id, LeadStatusChange.to_status_key, LeadStatusChange.via)
                .where(LeadStatusChange.actor_user_id == a.admin_user_id)
                .order_by(LeadStatusChange.lead_id)
            )
        ).all()
        events = (
            await conn.scalars(select(DomainEvent.type).where(DomainEvent.type == "lead.status_changed"))
        ).all()
        total_events = await conn.scalar(select(func.count()).select_from(DomainEvent))
    assert [tuple(h) for h in history] == [(a_ids[0], "won", "bulk"), (a_ids[2], "won", "bulk")]
    assert len(events) == 2
    assert total_events == (events_before or 0) + 2

    # Again: matched, but nothing changes and no history is written.
    again = await client.post(BULK, json=body, headers=a.admin)
    assert again.json() == {"action": "set_status", "matched": 2, "changed": 0}


async def test_owner_and_tag_changes_and_delete(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    a, a_ids, _, b_ids = await two_businesses(client, make_account, db_engine, pool)
    every = {"ids": [*a_ids, *b_ids]}

    owner = await client.post(
        BULK,
        json={"selection": every, "action": "set_owner", "owner_user_id": a.agent_user_id},
        headers=a.owner,
    )
    assert owner.json() == {"action": "set_owner", "matched": 3, "changed": 3}
    added = await client.post(
        BULK, json={"selection": every, "action": "add_tags", "tags": ["VIP", "follow up"]}, headers=a.owner
    )
    assert added.json() == {"action": "add_tags", "matched": 3, "changed": 3}
    removed = await client.post(
        BULK, json={"selection": every, "action": "remove_tags", "tags": ["dental"]}, headers=a.owner
    )
    assert removed.json() == {"action": "remove_tags", "matched": 3, "changed": 1}
    rows = await lead_rows(db_engine)
    assert [rows[i].tags for i in a_ids] == [["vip", "follow up"], ["vip", "follow up"], ["vip", "follow up"]]
    assert {rows[i].owner_user_id for i in a_ids} == {a.agent_user_id}
    assert rows[b_ids[0]].tags == ["vip"]
    assert rows[b_ids[0]].owner_user_id is None

    unassign = await client.post(
        BULK, json={"selection": every, "action": "set_owner", "owner_user_id": None}, headers=a.owner
    )
    assert unassign.json()["changed"] == 3
    deleted = await client.post(BULK, json={"selection": every, "action": "delete"}, headers=a.owner)
    assert deleted.json() == {"action": "delete", "matched": 3, "changed": 3}
    assert set(await lead_rows(db_engine)) == set(b_ids)


async def test_filters_and_large_selections_run_as_a_job(
    client: httpx.AsyncClient,
    make_account: MakeAccount,
    db_engine: AsyncEngine,
    pool: ArqRedis,
    run_bulk: RunJob,
) -> None:
    a, a_ids, b, b_ids = await two_businesses(client, make_account, db_engine, pool)
    contacted = (await status_ids(db_engine, a.business_id))["contacted"]
    started = await client.post(
        BULK,
        json={"selection": {"filter": {"tags": ["vip"]}}, "action": "set_status", "status_id": contacted},
        headers=a.owner,
    )
    assert started.status_code == 202, started.text
    job = started.json()
    assert (job["kind"], job["state"]) == ("leads.bulk", "queued")
    assert await pool.zrange(Queue.LOW.value, 0, -1) == [f"leads-bulk:{job['id']}".encode()]
    assert await run_bulk(job["id"]) == "succeeded"
    done = (await client.get(f"/api/jobs/{job['id']}", headers=a.agent)).json()
    assert (done["state"], done["total"], done["processed"], done["succeeded"], done["progress"]) == (
        "succeeded",
        2,
        2,
        2,
        1,
    )
    assert done["result"] == {"matched": 2, "changed": 2}
    rows = await lead_rows(db_engine)
    assert [rows[i].status_id == contacted for i in a_ids] == [True, False, True]
    assert rows[b_ids[0]].status_id != contacted  # B's vip lead is not matched by A's filter
    async with db_engine.connect() as conn:
        vias = (await conn.scalars(select(LeadStatusChange.via))).all()
    assert vias == ["bulk", "bulk"]

    # More than 200 ids (most of them unknown) also go to a job; foreign ids match nothing.
    many = [*a_ids[:2], b_ids[0], *range(1_000_000, 1_000_250)]
    big = await client.post(
        BULK, json={"selection": {"ids": many}, "action": "add_tags", "tags": ["big"]}, headers=a.owner
    )
    assert big.status_code == 202, big.text
    assert await run_bulk(big.json()["id"]) == "succeeded"
    result = (await client.get(f"/api/jobs/{big.json()['id']}", headers=a.owner)).json()["result"]
    assert result == {"matched": 2, "changed": 2}
    rows = await lead_rows(db_engine)
    assert "big" not in rows[b_ids[0]].tags
    assert "big" in rows[a_ids[0]].tags
    # B cannot see A's job.
    assert (await client.get(f"/api/jobs/{big.json()['id']}", headers=b.owner)).status_code == 404


async def test_bulk_bodies_are_validated(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    a, a_ids, b, _ = await two_businesses(client, make_account, db_engine, pool)
    b_won = (await status_ids(db_engine, b.business_id))["won"]
    ids = {"ids": a_ids}
    cases = [
        ({"selection": ids, "action": "set_status", "status_id": b_won}, "status_id"),
        ({"selection": ids, "action": "set_owner", "owner_user_id": b.admin_user_id}, "owner_user_id"),
        ({"selection": ids, "action": "set_status"}, None),
        ({"selection": ids, "action": "set_owner"}, None),
        ({"selection": ids, "action": "add_tags", "tags": []}, "tags"),
        ({"selection": ids, "action": "add_tags", "tags": ["<bad>"]}, "tags"),
        ({"selection": {"ids": a_ids, "filter": {}}, "action": "delete"}, None),
        ({"selection": {}, "action": "delete"}, None),
        ({"selection": {"ids": []}, "action": "delete"}, "ids"),
        ({"selection": ids, "action": "explode"}, "action"),
        ({"selection": {"filter": {"colour": "red"}}, "action": "delete"}, "colour"),
        ({"selection": ids, "action": "delete", "extra": 1}, "extra"),
        ({"selection": {"ids": [2**70]}, "action": "delete"}, None),
        ({"selection": ids, "action": "set_status", "status_id": 2**64}, "status_id"),
    ]
    for body, field in cases:
        response = await client.post(BULK, json=body, headers=a.owner)
        assert response.status_code == 422, (body, response.text)
        if field is not None:
            assert field in {str(e["loc"][-1]) for e in response.json()["detail"]}, (body, response.text)
    rows = await lead_rows(db_engine)
    assert set(rows) >= set(a_ids)  # nothing was deleted


async def test_agents_may_not_bulk_change(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    a, a_ids, _, _ = await two_businesses(client, make_account, db_engine, pool)
    response = await client.post(
        BULK, json={"selection": {"ids": a_ids}, "action": "delete"}, headers=a.agent
    )
    assert response.status_code == 403
    assert set(await lead_rows(db_engine)) >= set(a_ids)
