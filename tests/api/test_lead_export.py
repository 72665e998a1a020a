"""GET /api/leads/export.csv: the list's filters, the caller's business only, streamed in batches,
and cells a spreadsheet would run as formulas defused."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_api.lead_io import export
from prosaas_common.db import create_session_factory, unit_of_work
from prosaas_common.leads.writer import LeadWriter
from prosaas_common.models import AuditEvent, LeadStatus, UserRole
from tests.api.conftest import Account, auth_for

MakeAccount = Callable[..., Awaitable[Account]]
HEADER = [
    "id",
    "first_name",
    "last_name",
    "phone",
    "email",
    "company",
    "status",
    "source",
    "owner",
    "tags",
    "reason",
    "created_at",
    "updated_at",
]


async def status_ids(engine: AsyncEngine, business_id: int) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(LeadStatus.key, LeadStatus.id).where(LeadStatus.business_id == business_id)
        )
        return {key: status_id for key, status_id in rows}


async def add_leads(
    engine: AsyncEngine, pool: ArqRedis, business_id: int, leads: list[dict[str, Any]]
) -> list[int]:
    """Create leads through the writer (``status`` is a status key); returns their ids."""
    statuses = await status_ids(engine, business_id)

    async def job_pool() -> ArqRedis:
        return pool

    ids: list[int] = []
    async with unit_of_work(create_session_factory(engine)) as db:
        writer = LeadWriter(db, business_id, actor_user_id=None, via="api", pool=job_pool)
        for values in leads:
            values = dict(values)
            status = statuses[values.pop("status", "new")]
            lead, _ = await writer.upsert(values, status)
            ids.append(lead.id)
    return ids


def read_csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    reader = csv.DictReader(io.StringIO(response.text))
    assert reader.fieldnames == HEADER
    return list(reader)


async def test_export_honours_the_filter_and_the_tenant(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    owner = await make_account("owner@dental.example")
    assert owner.business_id is not None
    agent = await make_account("agent@dental.example", UserRole.AGENT, business_id=owner.business_id)
    other = await make_account("owner@bakery.example")
    assert other.business_id is not None
    ada, _bob, cleo = await add_leads(
        db_engine,
        pool,
        owner.business_id,
        [
            {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "phone": "+12125550100",
                "email": "ada@example.com",
                "company": "Engines",
                "tags": ["vip", "dental"],
                "owner_user_id": agent.user_id,
                "reason": "cleaning",
                "source": "web",
                "status": "contacted",
            },
            {"first_name": "Bob", "phone": "+12125550101", "status": "new"},
            {"first_name": "Cleo", "email": "cleo@example.com", "tags": ["vip"], "status": "contacted"},
        ],
    )
    await add_leads(
        db_engine,
        pool,
        other.business_id,
        [{"first_name": "Zed", "phone": "+12125550199", "tags": ["vip"], "status": "contacted"}],
    )
    headers = await auth_for(client, agent.email)  # leads.read is enough
    statuses = await status_ids(db_engine, owner.business_id)

    everything = read_csv(await client.get("/api/leads/export.csv", headers=headers))
    assert [row["first_name"] for row in everything] == ["Ada", "Bob", "Cleo"]  # id order, no Zed

    response = await client.get(
        "/api/leads/export.csv", params={"status_id": statuses["contacted"], "tag": "vip"}, headers=headers
    )
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="leads-')
    assert disposition.endswith('.csv"')
    rows = read_csv(response)
    assert [int(row["id"]) for row in rows] == [ada, cleo]
    first = rows[0]
    assert {k: v for k, v in first.items() if k not in ("id", "created_at", "updated_at")} == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+12125550100",  # a plain number, not prefixed
        "email": "ada@example.com",
        "company": "Engines",
        "status": "Contacted",
        "source": "web",
        "owner": "agent@dental.example",
        "tags": "vip;dental",
        "reason": "cleaning",
    }
    assert first["created_at"].startswith("20")
    assert "T" in first["created_at"]
    assert rows[1]["owner"] == ""
    assert rows[1]["phone"] == ""

    searched = read_csv(await client.get("/api/leads/export.csv", params={"q": "zed"}, headers=headers))
    assert searched == []  # the other business's lead never appears
    async with db_engine.connect() as conn:
        actions = (await conn.scalars(select(AuditEvent.action))).all()
    assert actions.count("leads.exported") == 3


async def test_export_walks_all_leads_in_keyset_batches(
    client: httpx.AsyncClient,
    make_account: MakeAccount,
    db_engine: AsyncEngine,
    pool: ArqRedis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = await make_account("owner@dental.example")
    assert owner.business_id is not None
    ids = await add_leads(db_engine, pool, owner.business_id, [{"first_name": f"Lead {n}"} for n in range(7)])
    monkeypatch.setattr(export, "BATCH", 3)  # 3 + 3 + 1, and a batch boundary exactly at the end
    rows = read_csv(await client.get("/api/leads/export.csv", headers=await auth_for(client, owner.email)))
    assert [int(row["id"]) for row in rows] == ids
    monkeypatch.setattr(export, "BATCH", 7)
    rows = read_csv(await client.get("/api/leads/export.csv", headers=await auth_for(client, owner.email)))
    assert len(rows) == 7


async def test_export_defuses_formula_cells(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    owner = await make_account("owner@dental.example")
    assert owner.business_id is not None
    await add_leads(
        db_engine,
        pool,
        owner.business_id,
        [
            {
                "first_name": '=HYPERLINK("http://evil.example","click")',
                "last_name": "+cmd|' /C calc'!A0",
                "company": "@SUM(A1:A9)",
                "reason": "-2+3",
                "email": "safe@example.com",
            }
        ],
    )
    [row] = read_csv(await client.get("/api/leads/export.csv", headers=await auth_for(client, owner.email)))
    assert row["first_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["last_name"] == "'+cmd|' /C calc'!A0"
    assert row["company"] == "'@SUM(A1:A9)"
    assert row["reason"] == "'-2+3"
    assert row["email"] == "safe@example.com"


def test_safe_cell_keeps_plain_numbers() -> None:
    assert export.safe_cell("+12125550100") == "+12125550100"
    assert export.safe_cell("-3") == "-3"
    assert export.safe_cell("-3+1") == "'-3+1"
    assert export.safe_cell("\tx") == "'\tx"
    assert export.safe_cell(None) == ""


async def test_export_needs_a_business_and_a_sign_in(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    staff = await make_account("ops@prosaas.example", UserRole.SYSTEM_ADMIN)
    response = await client.get("/api/leads/export.csv", headers=await auth_for(client, staff.email))
    assert response.status_code == 403
    assert (await client.get("/api/leads/export.csv")).status_code == 401
