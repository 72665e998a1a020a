"""/api/webhooks/deliveries: listing with filters and keyset pages, one delivery, re-sending, isolation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import Queue
from prosaas_common.models import AuditEvent, BusinessSettings
from prosaas_common.models.webhook import WebhookDelivery
from tests.api.lead_helpers import MakeAccount, Team, signed_in_team

DELIVERIES = "/api/webhooks/deliveries"
SECRET = "whsec_never-shown-anywhere"


async def add_delivery(engine: AsyncEngine, business_id: int, **values: Any) -> int:
    row: dict[str, Any] = {
        "business_id": business_id,
        "event_type": "lead.created",
        "url": "https://hooks.example/all",
        "payload": {"lead": {"id": 1, "first_name": "Ada"}},
        **values,
    }
    async with engine.begin() as conn:
        return int(
            (
                await conn.execute(insert(WebhookDelivery).values(**row).returning(WebhookDelivery.id))
            ).scalar_one()
        )


async def team_with_deliveries(
    client: httpx.AsyncClient, make_account: MakeAccount, engine: AsyncEngine, domain: str = "dental.example"
) -> tuple[Team, dict[str, int]]:
    team = await signed_in_team(client, make_account, domain)
    async with engine.begin() as conn:
        await conn.execute(
            update(BusinessSettings)
            .where(BusinessSettings.business_id == team.business_id)
            .values(webhook_secret=SECRET)
        )
    done = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    ids = {
        "delivered": await add_delivery(
            engine, team.business_id, status="delivered", attempts=1, last_status_code=200, delivered_at=done
        ),
        "dead": await add_delivery(
            engine,
            team.business_id,
            event_type="call.completed",
            status="dead",
            attempts=11,
            last_status_code=500,
            last_error="HTTP 500: down",
        ),
        "queued": await add_delivery(engine, team.business_id, event_type="lead.status_changed"),
        "retrying": await add_delivery(
            engine, team.business_id, attempts=2, last_status_code=502, next_attempt_at=done
        ),
    }
    return team, ids


async def test_list_newest_first_with_filters_and_pages(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team, ids = await team_with_deliveries(client, make_account, db_engine)
    listed = await client.get(DELIVERIES, headers=team.admin)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [d["id"] for d in body["items"]] == [ids["retrying"], ids["queued"], ids["dead"], ids["delivered"]]
    assert body["next_before"] is None
    dead = next(d for d in body["items"] if d["id"] == ids["dead"])
    assert (dead["status"], dead["attempts"], dead["last_status_code"], dead["last_error"]) == (
        "dead",
        11,
        500,
        "HTTP 500: down",
    )
    assert "payload" not in dead
    assert SECRET not in listed.text

    only_dead = (await client.get(DELIVERIES, params={"status": "dead"}, headers=team.owner)).json()
    assert [d["id"] for d in only_dead["items"]] == [ids["dead"]]
    created = (await client.get(DELIVERIES, params={"event_type": "lead.created"}, headers=team.owner)).json()
    assert [d["id"] for d in created["items"]] == [ids["retrying"], ids["delivered"]]
    pending = await client.get(
        DELIVERIES, params={"status": "pending", "event_type": "lead.created"}, headers=team.owner
    )
    assert [d["id"] for d in pending.json()["items"]] == [ids["retrying"]]

    first = (await client.get(DELIVERIES, params={"limit": 3}, headers=team.owner)).json()
    assert [d["id"] for d in first["items"]] == [ids["retrying"], ids["queued"], ids["dead"]]
    assert first["next_before"] == ids["dead"]
    rest = (await client.get(DELIVERIES, params={"before": first["next_before"]}, headers=team.owner)).json()
    assert ([d["id"] for d in rest["items"]], rest["next_before"]) == ([ids["delivered"]], None)

    for params in ({"status": "lost"}, {"limit": 0}, {"limit": 201}, {"before": 0}, {"event_type": ""}):
        assert (await client.get(DELIVERIES, params=params, headers=team.owner)).status_code == 422, params


async def test_get_one_shows_its_payload_never_the_secret(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team, ids = await team_with_deliveries(client, make_account, db_engine)
    response = await client.get(f"{DELIVERIES}/{ids['delivered']}", headers=team.owner)
    assert response.status_code == 200, response.text
    detail = response.json()
    assert (detail["status"], detail["attempts"], detail["url"]) == (
        "delivered",
        1,
        "https://hooks.example/all",
    )
    assert detail["payload"] == {"lead": {"id": 1, "first_name": "Ada"}}
    assert detail["delivered_at"].startswith("2026-11-23T10:00:00")
    assert SECRET not in response.text
    assert (await client.get(f"{DELIVERIES}/{ids['dead'] + 100}", headers=team.owner)).status_code == 404
    assert (await client.get(f"{DELIVERIES}/0", headers=team.owner)).status_code == 422


async def queued_jobs(pool: ArqRedis) -> dict[str, tuple[Any, ...]]:
    jobs = await pool.queued_jobs(queue_name=Queue.DEFAULT.value)
    return {job.job_id or "": job.args for job in jobs if job.function == "webhooks.deliver"}


async def test_resend_puts_it_back_to_pending_and_queues_a_new_round(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    team, ids = await team_with_deliveries(client, make_account, db_engine)
    dead = await client.post(f"{DELIVERIES}/{ids['dead']}/resend", headers=team.admin)
    assert dead.status_code == 202, dead.text
    assert (dead.json()["status"], dead.json()["attempts"]) == ("pending", 11)
    assert await queued_jobs(pool) == {f"webhook:{ids['dead']}:11": (ids["dead"], 11)}
    # A second click before the worker ran: the same round, not a second job.
    again = await client.post(f"{DELIVERIES}/{ids['dead']}/resend", headers=team.admin)
    assert again.status_code == 202, again.text
    assert len(await queued_jobs(pool)) == 1

    delivered = await client.post(f"{DELIVERIES}/{ids['delivered']}/resend", headers=team.owner)
    assert delivered.status_code == 202, delivered.text
    assert (delivered.json()["status"], delivered.json()["delivered_at"]) == ("pending", None)
    retrying = await client.post(f"{DELIVERIES}/{ids['retrying']}/resend", headers=team.owner)
    assert retrying.status_code == 202, retrying.text
    jobs = await queued_jobs(pool)
    assert jobs[f"webhook:{ids['delivered']}:1"] == (ids["delivered"], 1)
    assert jobs[f"webhook:{ids['retrying']}:2"] == (ids["retrying"], 2)

    queued = await client.post(f"{DELIVERIES}/{ids['queued']}/resend", headers=team.owner)
    assert queued.status_code == 409, queued.text
    assert len(await queued_jobs(pool)) == 3

    async with db_engine.connect() as conn:
        rows = {r.id: r for r in (await conn.execute(select(WebhookDelivery.__table__))).all()}
        audited = (
            await conn.execute(
                select(AuditEvent.action, AuditEvent.entity_id).where(AuditEvent.action == "webhook.resent")
            )
        ).all()
    assert (rows[ids["dead"]].status, rows[ids["dead"]].attempts) == ("pending", 11)
    assert rows[ids["dead"]].next_attempt_at is not None
    assert rows[ids["delivered"]].delivered_at is None
    assert rows[ids["queued"]].status == "pending"
    assert sorted(int(entity or 0) for _, entity in audited) == sorted(
        [ids["dead"], ids["dead"], ids["delivered"], ids["retrying"]]
    )


async def test_other_businesses_get_404_and_agents_403(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    a, a_ids = await team_with_deliveries(client, make_account, db_engine, "a.example")
    b, b_ids = await team_with_deliveries(client, make_account, db_engine, "b.example")
    listed = (await client.get(DELIVERIES, headers=b.owner)).json()
    assert {d["id"] for d in listed["items"]} == set(b_ids.values())
    for delivery_id in a_ids.values():
        assert (await client.get(f"{DELIVERIES}/{delivery_id}", headers=b.owner)).status_code == 404
        resend = await client.post(f"{DELIVERIES}/{delivery_id}/resend", headers=b.admin)
        assert resend.status_code == 404, resend.text
    assert await queued_jobs(pool) == {}

    for method, path in (
        ("GET", DELIVERIES),
        ("GET", f"{DELIVERIES}/{a_ids['dead']}"),
        ("POST", f"{DELIVERIES}/{a_ids['dead']}/resend"),
    ):
        response = await client.request(method, path, headers=a.agent)
        assert response.status_code == 403, (method, path, response.text)
    assert (await client.get(DELIVERIES)).status_code == 401
    async with db_engine.connect() as conn:
        status = await conn.scalar(select(WebhookDelivery.status).where(WebhookDelivery.id == a_ids["dead"]))
    assert status == "dead"
