"""/api/leads/imports: upload (CSV, XLSX), the guessed mapping, preview, dry run and the real import
run by the worker's ``leads_import`` job, then its progress at /api/jobs/{id}."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import Queue
from prosaas_common.models import BackgroundJob, Lead, LeadImport, LeadStatusChange, UserRole
from prosaas_common.settings import build_settings
from prosaas_worker.context import WorkerResources
from prosaas_worker.jobs import leads as lead_jobs
from prosaas_worker.settings import WorkerConfig
from tests.api.conftest import Account, auth_for
from tests.api.test_lead_export import add_leads, status_ids

MakeAccount = Callable[..., Awaitable[Account]]
RunJob = Callable[[str], Awaitable[str]]
IMPORTS = "/api/leads/imports"

CSV = (
    "Full Name;Mobile;E-mail;Stage;Notes;Colour\n"
    "Ada Lovelace;(212) 555-0100;ada@example.com;contacted;wants a cleaning;red\n"
    "\n"
    "Bob Stone;212 555 0101;not-an-email;;;blue\n"
    "Cleo Park;212-555-0102;cleo@example.com;Pending;;green\n"
    "Ada L.;+1 212 555 0100;;won;again;red\n"
    "Dan Roe;;dan@example.com;;;\n"
)


@pytest.fixture
async def run_import(database_url: str, redis_url: str, pool: ArqRedis) -> AsyncIterator[RunJob]:
    """Run the worker's ``leads_import`` for a job id, with a ctx built as the worker builds it."""
    resources = WorkerResources.create(
        build_settings(WorkerConfig, app_env="test", database_url=database_url, redis_url=redis_url)
    )

    async def run(job_id: str) -> str:
        ctx = resources.job_context(Queue.LOW)
        ctx.update(job_id=lead_jobs.import_job_id(job_id), job_try=1, redis=pool)
        return await lead_jobs.leads_import(ctx, job_id)

    yield run
    await resources.dispose()


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], content: bytes, filename: str = "leads.csv"
) -> httpx.Response:
    return await client.post(IMPORTS, files={"file": (filename, content, "text/csv")}, headers=headers)


def workbook(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def owner_headers(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> tuple[Account, dict[str, str]]:
    owner = await make_account("owner@dental.example")
    return owner, await auth_for(client, owner.email)


async def test_upload_csv_guesses_the_mapping_and_previews(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    owner, headers = await owner_headers(client, make_account)
    response = await upload(client, headers, CSV.encode("utf-8-sig"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["file_format"] == "csv"
    assert body["row_count"] == 5
    assert body["columns"] == ["Full Name", "Mobile", "E-mail", "Stage", "Notes", "Colour"]
    assert body["mapping"] == {
        "Full Name": "name",
        "Mobile": "phone",
        "E-mail": "email",
        "Stage": "status",
        "Notes": "reason",
        "Colour": "ignore",
    }
    assert body["preview"][0]["Full Name"] == "Ada Lovelace"
    assert body["preview"][1]["Mobile"] == "212 555 0101"
    async with db_engine.connect() as conn:
        stored = (await conn.execute(select(LeadImport.business_id, LeadImport.row_count))).one()
    assert tuple(stored) == (owner.business_id, 5)


async def test_upload_xlsx_reads_the_first_sheet(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    _, headers = await owner_headers(client, make_account)
    content = workbook(
        [["First name", "Last name", "Phone"], ["Ada", "Lovelace", 2125550100], ["Bob", None, None]]
    )
    response = await upload(client, headers, content, "leads.xlsx")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["file_format"], body["row_count"]) == ("xlsx", 2)
    assert body["mapping"] == {"First name": "first_name", "Last name": "last_name", "Phone": "phone"}
    assert body["preview"] == [
        {"First name": "Ada", "Last name": "Lovelace", "Phone": "2125550100"},
        {"First name": "Bob", "Last name": "", "Phone": ""},
    ]


async def test_bad_files_are_refused_with_a_reason(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    _, headers = await owner_headers(client, make_account)
    latin = await upload(client, headers, "name\nJosé\n".encode("latin-1"))
    assert latin.status_code == 422
    [error] = latin.json()["detail"]
    assert error["loc"] == ["body", "file"]
    assert "UTF-8" in error["msg"]
    header_only = await upload(client, headers, b"name,phone\n")
    assert header_only.status_code == 422
    assert "no rows" in header_only.json()["detail"][0]["msg"]
    broken = await upload(client, headers, b"PK\x03\x04garbage", "leads.xlsx")
    assert broken.status_code == 422
    too_many = b"phone\n" + b"x\n" * 50_001
    refused = await upload(client, headers, too_many)
    assert refused.status_code == 422
    assert "more than 50,000 rows" in refused.json()["detail"][0]["msg"]
    exactly = await upload(client, headers, b"phone\n" + b"x\n" * 50_000)
    assert exactly.status_code == 201
    assert exactly.json()["row_count"] == 50_000
    too_big = await upload(client, headers, b"name\n" + b"a" * (10 * 1024 * 1024))
    assert too_big.status_code == 413
    async with db_engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(LeadImport)) == 1


async def test_preview_normalises_rows_and_reports_errors_by_file_row(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    owner, headers = await owner_headers(client, make_account)
    assert owner.business_id is not None
    import_id = (await upload(client, headers, CSV.encode())).json()["id"]
    statuses = await status_ids(db_engine, owner.business_id)

    preview = await client.post(f"{IMPORTS}/{import_id}/preview", headers=headers)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["valid"], body["invalid"]) == (3, 2)
    rows = {row["row"]: row for row in body["rows"]}
    assert sorted(rows) == [2, 4, 5, 6, 7]  # row 3 of the file is blank
    assert rows[2]["values"] == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+12125550100",
        "email": "ada@example.com",
        "reason": "wants a cleaning",
        "source": "import",
    }
    assert rows[2]["status_id"] == statuses["contacted"]
    assert [(e["row"], e["field"]) for e in rows[4]["errors"]] == [(4, "email")]
    assert [(e["row"], e["field"]) for e in rows[5]["errors"]] == [(5, "status")]
    assert "Pending" in rows[5]["errors"][0]["message"]

    custom = await client.post(
        f"{IMPORTS}/{import_id}/preview",
        json={"mapping": {"Full Name": "name", "Mobile": "phone", "Colour": "fields.colour"}},
        headers=headers,
    )
    assert custom.status_code == 200, custom.text
    rows = {row["row"]: row for row in custom.json()["rows"]}
    assert custom.json()["invalid"] == 0  # e-mail and status are no longer read
    assert rows[4]["values"]["fields"] == {"colour": "blue"}
    assert "email" not in rows[4]["values"]

    for mapping, column in (({"Nope": "phone"}, "Nope"), ({"Mobile": "shoe"}, "Mobile")):
        bad = await client.post(f"{IMPORTS}/{import_id}/preview", json={"mapping": mapping}, headers=headers)
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "mapping", column]
    extra = await client.post(f"{IMPORTS}/{import_id}/preview", json={"mapping": {}, "x": 1}, headers=headers)
    assert extra.status_code == 422


async def test_dry_run_validates_everything_and_writes_nothing(
    client: httpx.AsyncClient,
    make_account: MakeAccount,
    db_engine: AsyncEngine,
    pool: ArqRedis,
    run_import: RunJob,
) -> None:
    _, headers = await owner_headers(client, make_account)
    import_id = (await upload(client, headers, CSV.encode())).json()["id"]
    started = await client.post(f"{IMPORTS}/{import_id}/start", json={"dry_run": True}, headers=headers)
    assert started.status_code == 202, started.text
    job = started.json()
    assert (job["kind"], job["state"], job["total"], job["progress"]) == ("leads.import", "queued", 5, 0)
    assert await pool.zrange(Queue.LOW.value, 0, -1) == [f"leads-import:{job['id']}".encode()]

    assert await run_import(job["id"]) == "succeeded"
    done = (await client.get(f"/api/jobs/{job['id']}", headers=headers)).json()
    assert (done["state"], done["processed"], done["succeeded"], done["failed"]) == ("succeeded", 5, 3, 2)
    assert done["progress"] == 1
    assert done["result"] == {"dry_run": True, "valid": 3, "failed": 2}
    assert [(e["row"], e["field"]) for e in done["errors"]] == [(4, "email"), (5, "status")]
    async with db_engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(Lead)) == 0
    # A dry run does not spend the file: the real import may follow.
    real = await client.post(f"{IMPORTS}/{import_id}/start", json={}, headers=headers)
    assert real.status_code == 202, real.text


async def test_import_creates_and_updates_deduplicating_by_phone(
    client: httpx.AsyncClient,
    make_account: MakeAccount,
    db_engine: AsyncEngine,
    pool: ArqRedis,
    run_import: RunJob,
) -> None:
    owner, headers = await owner_headers(client, make_account)
    assert owner.business_id is not None
    statuses = await status_ids(db_engine, owner.business_id)
    [dan] = await add_leads(
        db_engine, pool, owner.business_id, [{"first_name": "Dan", "phone": "+12125550104", "status": "new"}]
    )
    content = CSV.replace("Dan Roe;;dan@example.com;;;", "Dan Roe;212 555 0104;dan@example.com;;;")
    import_id = (await upload(client, headers, content.encode())).json()["id"]
    mapping = {
        "Full Name": "name",
        "Mobile": "phone",
        "E-mail": "email",
        "Stage": "status",
        "Notes": "reason",
        "Colour": "fields.colour",
    }
    started = await client.post(
        f"{IMPORTS}/{import_id}/start",
        json={"mapping": mapping, "default_status_id": statuses["qualified"]},
        headers=headers,
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    assert await run_import(job_id) == "succeeded"

    done = (await client.get(f"/api/jobs/{job_id}", headers=headers)).json()
    # Ada created, Bob (bad e-mail) and Cleo (unknown status) failed, Ada again updated, Dan updated.
    assert done["result"] == {"dry_run": False, "created": 1, "updated": 2, "failed": 2}
    assert (done["succeeded"], done["failed"], done["state"]) == (3, 2, "succeeded")
    async with db_engine.connect() as conn:
        leads = {
            row.phone: row
            for row in await conn.execute(
                select(
                    Lead.id, Lead.phone, Lead.first_name, Lead.email, Lead.status_id, Lead.fields, Lead.source
                )
            )
        }
        history = (
            await conn.execute(
                select(LeadStatusChange.lead_id, LeadStatusChange.to_status_key, LeadStatusChange.via)
            )
        ).all()
    assert set(leads) == {"+12125550100", "+12125550104"}
    ada = leads["+12125550100"]
    assert (ada.first_name, ada.email, ada.fields, ada.source) == (
        "Ada",
        "ada@example.com",
        {"colour": "red"},
        "import",
    )
    # Created as "contacted" (its Stage cell), then its second row moved it to "won".
    assert ada.status_id == statuses["won"]
    assert [(h.to_status_key, h.via) for h in history if h.lead_id == ada.id] == [("won", "import")]
    existing = leads["+12125550104"]
    assert (existing.id, existing.email, existing.status_id) == (dan, "dan@example.com", statuses["new"])

    again = await client.post(f"{IMPORTS}/{import_id}/start", json={}, headers=headers)
    assert again.status_code == 409
    assert again.json()["detail"]["job_id"] == job_id


async def test_start_validates_its_body(client: httpx.AsyncClient, make_account: MakeAccount) -> None:
    _, headers = await owner_headers(client, make_account)
    other = await make_account("owner@bakery.example")
    import_id = (await upload(client, headers, CSV.encode())).json()["id"]
    foreign_status = await client.post(
        f"{IMPORTS}/{import_id}/start", json={"default_status_id": 10_000}, headers=headers
    )
    assert foreign_status.status_code == 422
    assert foreign_status.json()["detail"][0]["loc"] == ["body", "default_status_id"]
    bad_mapping = await client.post(
        f"{IMPORTS}/{import_id}/start",
        json={"mapping": {"Mobile": "phone", "E-mail": "phone"}},
        headers=headers,
    )
    assert bad_mapping.status_code == 422
    assert "already mapped" in bad_mapping.json()["detail"][0]["msg"]
    other_headers = await auth_for(client, other.email)
    for path in (f"{IMPORTS}/{import_id}/preview", f"{IMPORTS}/{import_id}/start"):
        assert (await client.post(path, json={}, headers=other_headers)).status_code == 404
    assert (await client.post(f"{IMPORTS}/{uuid.uuid4()}/start", headers=headers)).status_code == 404


async def test_agents_may_not_import(client: httpx.AsyncClient, make_account: MakeAccount) -> None:
    owner = await make_account("owner@dental.example")
    agent = await make_account("agent@dental.example", UserRole.AGENT, business_id=owner.business_id)
    response = await upload(client, await auth_for(client, agent.email), CSV.encode())
    assert response.status_code == 403


async def test_jobs_of_another_business_are_not_found(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    _, headers = await owner_headers(client, make_account)
    import_id = (await upload(client, headers, CSV.encode())).json()["id"]
    job_id = (await client.post(f"{IMPORTS}/{import_id}/start", headers=headers)).json()["id"]
    other = await make_account("owner@bakery.example")
    other_headers = await auth_for(client, other.email)
    assert (await client.get(f"/api/jobs/{job_id}", headers=other_headers)).status_code == 404
    assert (await client.get(f"/api/jobs/{uuid.uuid4()}", headers=headers)).status_code == 404
    assert (await client.get("/api/jobs/not-a-uuid", headers=headers)).status_code == 422
    mine: dict[str, Any] = (await client.get(f"/api/jobs/{job_id}", headers=headers)).json()
    assert (mine["state"], mine["errors"], mine["started_at"]) == ("queued", [], None)
    async with db_engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(BackgroundJob)) == 1
