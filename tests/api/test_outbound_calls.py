"""/api/calls/outbound: calling one lead (202 with the queued call, its job queued after the commit,
idempotent with an Idempotency-Key; 404 for another business's lead, 422 without a phone or a number),
bulk runs over ids or a filter (only this business's leads, in order), their progress, list and stop,
and ``max_outbound_calls`` in the business settings."""

from __future__ import annotations

from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import JobName, Queue
from prosaas_common.models import Call, OutboundCallRun
from tests.api.lead_helpers import MakeAccount, Team, create_lead, error_fields, signed_in_team

OUTBOUND = "/api/calls/outbound"
RUNS = "/api/calls/outbound/runs"
NUMBER = "+14155550177"


async def add_number(client: httpx.AsyncClient, team: Team, number: str = NUMBER) -> None:
    response = await client.post(
        "/api/business/current/phone-numbers", json={"number": number}, headers=team.owner
    )
    assert response.status_code == 201, response.text


async def queued(pool: ArqRedis, function: str) -> list[tuple[str, tuple[Any, ...]]]:
    jobs = await pool.queued_jobs(queue_name=Queue.DEFAULT.value)
    return [(job.job_id or "", tuple(job.args)) for job in jobs if job.function == function]


async def call_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(Call))).scalar_one())


async def test_calling_a_lead_queues_the_call_once(
    client: httpx.AsyncClient, make_account: MakeAccount, pool: ArqRedis, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    await add_number(client, team)
    lead = await create_lead(client, team.owner, name="Ada", phone="+14155550100")

    response = await client.post(
        OUTBOUND, json={"lead_id": lead["id"]}, headers=team.agent | {"Idempotency-Key": "k1"}
    )

    assert response.status_code == 202, response.text
    call = response.json()
    assert (call["direction"], call["status"], call["lead_id"]) == ("outbound", "queued", lead["id"])
    assert (call["from_number"], call["to_number"]) == (NUMBER, "+14155550100")
    assert await queued(pool, JobName.CALLS_PLACE_OUTBOUND) == [(f"call-place:{call['id']}", (call["id"],))]

    repeat = await client.post(
        OUTBOUND, json={"lead_id": lead["id"]}, headers=team.agent | {"Idempotency-Key": "k1"}
    )
    assert (repeat.status_code, repeat.json()["id"]) == (200, call["id"])
    other = await create_lead(client, team.owner, name="Bob", phone="+14155550101")
    reused = await client.post(
        OUTBOUND, json={"lead_id": other["id"]}, headers=team.agent | {"Idempotency-Key": "k1"}
    )
    assert reused.status_code == 409
    assert await call_count(db_engine) == 1
    listed = (await client.get("/api/calls", headers=team.agent)).json()["items"]
    assert [c["id"] for c in listed] == [call["id"]]


async def test_calls_that_cannot_be_made_are_refused(
    client: httpx.AsyncClient, make_account: MakeAccount, pool: ArqRedis, db_engine: AsyncEngine
) -> None:
    a = await signed_in_team(client, make_account, domain="a.example")
    b = await signed_in_team(client, make_account, domain="b.example")
    a_lead = await create_lead(client, a.owner, name="Ada", phone="+14155550100")
    no_phone = await create_lead(client, b.owner, name="Nobody", email="n@example.com")
    dnc = await create_lead(client, b.owner, name="Quiet", phone="+14155550102", tags=["Do-Not-Call"])
    b_lead = await create_lead(client, b.owner, name="Bob", phone="+14155550101")

    assert (await client.post(OUTBOUND, json={"lead_id": a_lead["id"]}, headers=b.agent)).status_code == 404
    assert error_fields(await client.post(OUTBOUND, json={"lead_id": b_lead["id"]}, headers=b.agent)) == {
        "lead_id"
    }  # B has no number to call from
    await add_number(client, b, "+14155550188")
    assert error_fields(await client.post(OUTBOUND, json={"lead_id": no_phone["id"]}, headers=b.agent)) == {
        "lead_id"
    }
    assert error_fields(await client.post(OUTBOUND, json={"lead_id": dnc["id"]}, headers=b.agent)) == {
        "lead_id"
    }
    assert error_fields(await client.post(OUTBOUND, json={"lead_id": 0}, headers=b.agent)) == {"lead_id"}
    assert error_fields(await client.post(OUTBOUND, json={}, headers=b.agent)) == {"lead_id"}
    assert await call_count(db_engine) == 0
    assert await queued(pool, JobName.CALLS_PLACE_OUTBOUND) == []


async def test_a_run_takes_this_business_leads_in_order_and_can_be_stopped(
    client: httpx.AsyncClient, make_account: MakeAccount, pool: ArqRedis, db_engine: AsyncEngine
) -> None:
    a = await signed_in_team(client, make_account, domain="a.example")
    b = await signed_in_team(client, make_account, domain="b.example")
    await add_number(client, b, "+14155550188")
    foreign = await create_lead(client, a.owner, name="Ada", phone="+14155550100")
    leads = [await create_lead(client, b.owner, name=f"L{i}", phone=f"+1415555011{i}") for i in range(3)]
    ids = [leads[2]["id"], foreign["id"], leads[0]["id"], leads[2]["id"]]

    assert (await client.post(RUNS, json={"lead_ids": ids}, headers=b.agent)).status_code == 403
    response = await client.post(RUNS, json={"lead_ids": ids}, headers=b.admin)

    assert response.status_code == 202, response.text
    run = response.json()
    assert (run["status"], run["total"], run["processed"], run["progress"]) == ("running", 2, 0, 0.0)
    assert await queued(pool, JobName.CALLS_RUN_OUTBOUND) == [(f"outbound-run:{run['id']}:0", (run["id"], 0))]
    async with db_engine.connect() as conn:
        selection = (
            await conn.execute(select(OutboundCallRun.selection).where(OutboundCallRun.id == run["id"]))
        ).scalar_one()
    assert selection == {"lead_ids": [leads[2]["id"], leads[0]["id"]], "filter": None}

    by_filter = await client.post(RUNS, json={"filter": {"q": "L1"}}, headers=b.owner)
    assert (by_filter.status_code, by_filter.json()["total"]) == (202, 1)
    listed = (await client.get(RUNS, headers=b.agent)).json()
    assert [r["id"] for r in listed["items"]] == [by_filter.json()["id"], run["id"]]
    assert (await client.get(RUNS, headers=a.owner)).json()["items"] == []
    assert (await client.get(f"{RUNS}/{run['id']}", headers=a.owner)).status_code == 404
    assert (await client.post(f"{RUNS}/{run['id']}/stop", headers=a.owner)).status_code == 404

    stopped = await client.post(f"{RUNS}/{run['id']}/stop", headers=b.owner)
    assert (stopped.status_code, stopped.json()["status"]) == (200, "stopping")
    again = await client.post(f"{RUNS}/{run['id']}/stop", headers=b.owner)
    assert (again.status_code, again.json()["status"]) == (200, "stopping")
    got = (await client.get(f"{RUNS}/{run['id']}", headers=b.agent)).json()
    assert got["status"] == "stopping"


async def test_runs_refuse_empty_selections_and_a_business_without_a_number(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    lead = await create_lead(client, team.owner, name="Ada", phone="+14155550100")
    assert error_fields(await client.post(RUNS, json={"lead_ids": [lead["id"]]}, headers=team.owner)) == {
        "lead_ids"
    }
    await add_number(client, team)
    assert error_fields(await client.post(RUNS, json={"lead_ids": [999_999]}, headers=team.owner)) == {
        "lead_ids"
    }
    assert error_fields(await client.post(RUNS, json={"filter": {"q": "nobody"}}, headers=team.owner)) == {
        "filter"
    }
    both = await client.post(RUNS, json={"lead_ids": [lead["id"]], "filter": {}}, headers=team.owner)
    assert both.status_code == 422
    assert (await client.post(RUNS, json={"lead_ids": []}, headers=team.owner)).status_code == 422
    async with db_engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(OutboundCallRun))).scalar_one() == 0


async def test_max_outbound_calls_is_a_business_setting(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    settings = "/api/business/current/settings"
    assert (await client.get(settings, headers=team.owner)).json()["max_outbound_calls"] == 3
    changed = await client.patch(settings, json={"max_outbound_calls": 10}, headers=team.owner)
    assert (changed.status_code, changed.json()["max_outbound_calls"]) == (200, 10)
    for bad in (0, 51, None):
        assert error_fields(
            await client.patch(settings, json={"max_outbound_calls": bad}, headers=team.owner)
        ) == {"max_outbound_calls"}
