"""``leads_import`` and ``leads_bulk`` against real Postgres and Redis: batches with committed progress,
resumption after a crash without applying a row twice, failure states, and a run through a real worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from arq.connections import ArqRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.db import create_session_factory, unit_of_work
from prosaas_common.jobs import Queue, enqueue
from prosaas_common.leads.bulk import BulkChange, BulkSelection
from prosaas_common.leads.filters import LeadFilter
from prosaas_common.leads.importing import guess_mapping, parse_file
from prosaas_common.leads.writer import LeadWriter
from prosaas_common.models import (
    BackgroundJob,
    Business,
    Lead,
    LeadImport,
    LeadStatus,
    LeadStatusChange,
    User,
    UserRole,
)
from prosaas_common.provision import provision_business
from prosaas_worker.context import JobContext, WorkerResources
from prosaas_worker.jobs import leads as lead_jobs
from tests.worker.conftest import MakeConfig, RunGroup

RunJob = Callable[[str, str], Awaitable[str]]


@dataclass(frozen=True)
class Tenant:
    business_id: int
    user_id: int
    statuses: dict[str, int]


@pytest.fixture
async def tenant(db_engine: AsyncEngine) -> Tenant:
    return await make_tenant(db_engine, "dental")


async def make_tenant(engine: AsyncEngine, name: str, region: str = "US") -> Tenant:
    async with unit_of_work(create_session_factory(engine)) as db:
        business = Business(name=name, default_region=region)
        db.add(business)
        await db.flush()
        await provision_business(db, business)
        user = User(email=f"owner@{name}.example", role=UserRole.OWNER, business_id=business.id)
        db.add(user)
        await db.flush()
        rows = await db.execute(
            select(LeadStatus.key, LeadStatus.id).where(LeadStatus.business_id == business.id)
        )
        return Tenant(business.id, user.id, {key: status_id for key, status_id in rows})


@pytest.fixture
async def run(make_config: MakeConfig, pool: ArqRedis) -> AsyncIterator[RunJob]:
    """``await run("leads_import" | "leads_bulk", job_id)``: the job function, with a ctx built as the
    worker builds it."""
    resources = WorkerResources.create(make_config())
    functions = {"leads_import": lead_jobs.leads_import, "leads_bulk": lead_jobs.leads_bulk}

    async def call(name: str, job_id: str) -> str:
        ctx: JobContext = resources.job_context(Queue.LOW)
        ctx.update(job_id=f"{name}:{job_id}", job_try=1, redis=pool)
        return await functions[name](ctx, job_id)

    yield call
    await resources.dispose()


async def add_import(
    engine: AsyncEngine, tenant: Tenant, content: str, *, dry_run: bool = False, **params: Any
) -> str:
    """A stored file and its queued import job (as the api leaves them); returns the job id."""
    parsed = parse_file(content.encode())
    async with unit_of_work(create_session_factory(engine)) as db:
        job = BackgroundJob(
            business_id=tenant.business_id,
            kind="leads.import",
            total=len(parsed.rows),
            created_by_user_id=tenant.user_id,
        )
        db.add(job)
        await db.flush()
        upload = LeadImport(
            business_id=tenant.business_id,
            filename="leads.csv",
            file_format="csv",
            content=content.encode(),
            columns=parsed.columns,
            row_count=len(parsed.rows),
            mapping=guess_mapping(parsed.columns),
            job_id=job.id,
        )
        db.add(upload)
        await db.flush()
        job.params = {"import_id": str(upload.id), "mapping": upload.mapping, "dry_run": dry_run, **params}
        return str(job.id)


async def add_bulk(engine: AsyncEngine, tenant: Tenant, selection: BulkSelection, change: BulkChange) -> str:
    async with unit_of_work(create_session_factory(engine)) as db:
        job = BackgroundJob(
            business_id=tenant.business_id,
            kind="leads.bulk",
            params={"selection": selection.to_json(), "change": change.to_json()},
            created_by_user_id=tenant.user_id,
        )
        db.add(job)
        await db.flush()
        return str(job.id)


async def job_row(engine: AsyncEngine, job_id: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(select(BackgroundJob.__table__).where(BackgroundJob.id == uuid.UUID(job_id)))
        ).one()


async def count(engine: AsyncEngine, model: type[Any]) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(model)) or 0)


def crash_on_call(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    on_call: int,
    seen: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Make ``LeadWriter.<name>`` die like a killed worker (CancelledError) on its ``on_call``-th call."""
    original = getattr(LeadWriter, name)
    calls = 0

    async def patched(self: LeadWriter, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if seen is not None:
            await seen()
        if calls == on_call:
            raise asyncio.CancelledError
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(LeadWriter, name, patched)


def csv_of(rows: list[str]) -> str:
    return "Name,Phone,Stage\n" + "\n".join(rows) + "\n"


# 13 rows: 4 without a phone (never deduplicated, so a double import would show), 2 repeated phones,
# 1 bad phone. 11 valid rows become 9 leads (2 updates).
ROWS = [
    "Ada,212 555 0100,contacted",
    "Bob,,",
    "Cleo,212 555 0102,",
    "Dan,,",
    "Eve,212 555 0100,won",  # Ada's phone: update (and status → won)
    "Finn,nope,",  # bad phone
    "Gus,,",
    "Hal,212 555 0107,",
    "Ivy,212 555 0102,",  # Cleo's phone: update
    "Jon,,",
    "Kim,212 555 0110,",
    "Lea,212 555 0111,",
    "Max,212 555 0112,",
]


async def test_import_resumes_after_a_crash_without_importing_a_row_twice(
    db_engine: AsyncEngine, tenant: Tenant, run: RunJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lead_jobs, "IMPORT_BATCH", 4)
    job_id = await add_import(db_engine, tenant, csv_of(ROWS))
    progress: list[int] = []

    async def seen() -> None:  # what GET /api/jobs/{id} would show while the job runs
        progress.append((await job_row(db_engine, job_id)).processed)

    # Rows 1-4 and 5-8 commit; the worker dies in the 3rd batch (the 8th upsert: row 10 of the file).
    crash_on_call(monkeypatch, "upsert", 8, seen)
    with pytest.raises(asyncio.CancelledError):
        await run("leads_import", job_id)
    crashed = await job_row(db_engine, job_id)
    assert (crashed.state, crashed.processed, crashed.succeeded, crashed.failed) == ("running", 8, 7, 1)
    assert crashed.result == {"dry_run": False, "created": 6, "updated": 1, "failed": 1}
    assert sorted(set(progress)) == [0, 4, 8]  # progress was committed batch by batch
    assert await count(db_engine, Lead) == 6  # the 3rd batch rolled back entirely

    monkeypatch.undo()
    monkeypatch.setattr(lead_jobs, "IMPORT_BATCH", 4)
    assert await run("leads_import", job_id) == "succeeded"
    done = await job_row(db_engine, job_id)
    assert (done.state, done.processed, done.total, done.succeeded, done.failed) == (
        "succeeded",
        13,
        13,
        12,
        1,
    )
    assert done.result == {"dry_run": False, "created": 10, "updated": 2, "failed": 1}
    assert done.errors == [{"row": 7, "field": "phone", "message": "'nope' is not a phone number"}]
    assert done.started_at is not None
    assert done.finished_at is not None
    async with db_engine.connect() as conn:
        names = sorted((await conn.scalars(select(Lead.first_name))).all())
        ada = (await conn.execute(select(Lead.status_id).where(Lead.phone == "+12125550100"))).scalar_one()
        history = (await conn.scalars(select(LeadStatusChange.via))).all()
    # Every phoneless row exactly once; repeated phones merged into the first row's lead.
    assert names == ["Ada", "Bob", "Cleo", "Dan", "Gus", "Hal", "Jon", "Kim", "Lea", "Max"]
    assert ada == tenant.statuses["won"]
    assert history == ["import"]

    # A finished job run again (a duplicate delivery) changes nothing.
    assert await run("leads_import", job_id) == "skipped"
    assert await count(db_engine, Lead) == 10


async def test_default_status_region_and_dry_run(db_engine: AsyncEngine, tenant: Tenant, run: RunJob) -> None:
    dry = await add_import(db_engine, tenant, csv_of(ROWS), dry_run=True)
    assert await run("leads_import", dry) == "succeeded"
    row = await job_row(db_engine, dry)
    assert row.result == {"dry_run": True, "valid": 12, "failed": 1}
    assert await count(db_engine, Lead) == 0

    real = await add_import(
        db_engine, tenant, "name,phone\nAda,(212) 555-0100\n", default_status_id=tenant.statuses["qualified"]
    )
    assert await run("leads_import", real) == "succeeded"
    async with db_engine.connect() as conn:
        lead = (await conn.execute(select(Lead.phone, Lead.status_id, Lead.source))).one()
    assert tuple(lead) == ("+12125550100", tenant.statuses["qualified"], "import")

    # National numbers are read in the business's own region.
    london = await make_tenant(db_engine, "london", "GB")
    uk = await add_import(db_engine, london, "name,phone\nAda,020 7946 0000\nBob,(212) 555-0100\n")
    assert await run("leads_import", uk) == "succeeded"
    row = await job_row(db_engine, uk)
    assert (row.succeeded, row.failed) == (1, 1)
    async with db_engine.connect() as conn:
        phone = await conn.scalar(select(Lead.phone).where(Lead.business_id == london.business_id))
    assert phone == "+442079460000"


async def test_errors_are_capped_but_counted(db_engine: AsyncEngine, tenant: Tenant, run: RunJob) -> None:
    content = "name,email\n" + "".join(f"P{n},not-an-email-{n}\n" for n in range(510))
    job_id = await add_import(db_engine, tenant, content, dry_run=True)
    assert await run("leads_import", job_id) == "succeeded"
    row = await job_row(db_engine, job_id)
    assert (row.failed, len(row.errors)) == (510, lead_jobs.MAX_ERRORS)
    assert row.errors[0]["row"] == 2
    assert row.errors[-1]["row"] == 501


async def test_an_unusable_file_fails_the_job_with_a_message(
    db_engine: AsyncEngine, tenant: Tenant, run: RunJob
) -> None:
    job_id = await add_import(db_engine, tenant, "Name,Phone\nAda,212 555 0100\n")
    async with unit_of_work(create_session_factory(db_engine)) as db:
        job = await db.get(BackgroundJob, uuid.UUID(job_id))
        assert job is not None
        job.params = {**job.params, "mapping": {"Name": "phone", "Phone": "phone"}}
    assert await run("leads_import", job_id) == "failed"
    row = await job_row(db_engine, job_id)
    assert row.state == "failed"
    assert "already mapped" in row.result["error"]
    assert row.finished_at is not None
    assert await run("leads_import", job_id) == "skipped"
    assert await run("leads_import", str(uuid.uuid4())) == "skipped"


async def add_leads(engine: AsyncEngine, pool: ArqRedis, tenant: Tenant, names: list[str]) -> list[int]:
    async def job_pool() -> ArqRedis:
        return pool

    async with unit_of_work(create_session_factory(engine)) as db:
        writer = LeadWriter(db, tenant.business_id, actor_user_id=None, via="api", pool=job_pool)
        return [(await writer.upsert({"first_name": name, "tags": ["vip"]}))[0].id for name in names]


async def test_bulk_job_resumes_after_a_crash_and_stays_in_its_business(
    db_engine: AsyncEngine, tenant: Tenant, pool: ArqRedis, run: RunJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = await make_tenant(db_engine, "bakery")
    mine = await add_leads(db_engine, pool, tenant, [f"L{n}" for n in range(8)])
    theirs = await add_leads(db_engine, pool, other, ["Zed"])
    monkeypatch.setattr(lead_jobs, "BULK_BATCH", 3)
    job_id = await add_bulk(
        db_engine,
        tenant,
        BulkSelection(lead_filter=LeadFilter(tags=("vip",))),
        BulkChange("set_status", status_id=tenant.statuses["won"]),
    )
    crash_on_call(monkeypatch, "change_status", 5)  # inside the 2nd batch
    with pytest.raises(asyncio.CancelledError):
        await run("leads_bulk", job_id)
    crashed = await job_row(db_engine, job_id)
    assert (crashed.state, crashed.total, crashed.processed, crashed.succeeded) == ("running", 8, 3, 3)
    assert await count(db_engine, LeadStatusChange) == 3

    monkeypatch.undo()
    monkeypatch.setattr(lead_jobs, "BULK_BATCH", 3)
    assert await run("leads_bulk", job_id) == "succeeded"
    done = await job_row(db_engine, job_id)
    assert (done.state, done.total, done.processed, done.succeeded) == ("succeeded", 8, 8, 8)
    assert done.result == {"matched": 8, "changed": 8}
    async with db_engine.connect() as conn:
        changes = (await conn.execute(select(LeadStatusChange.lead_id, LeadStatusChange.via))).all()
        zed = await conn.scalar(select(Lead.status_id).where(Lead.id == theirs[0]))
    assert sorted(lead_id for lead_id, _ in changes) == mine  # each lead exactly once
    assert {via for _, via in changes} == {"bulk"}
    assert zed == other.statuses["new"]


async def test_bulk_delete_by_ids_ignores_foreign_ids(
    db_engine: AsyncEngine, tenant: Tenant, pool: ArqRedis, run: RunJob
) -> None:
    other = await make_tenant(db_engine, "bakery")
    mine = await add_leads(db_engine, pool, tenant, ["A", "B", "C"])
    theirs = await add_leads(db_engine, pool, other, ["Zed"])
    job_id = await add_bulk(
        db_engine, tenant, BulkSelection(ids=(mine[0], mine[2], theirs[0])), BulkChange("delete")
    )
    assert await run("leads_bulk", job_id) == "succeeded"
    assert (await job_row(db_engine, job_id)).result == {"matched": 2, "changed": 2}
    async with db_engine.connect() as conn:
        left = sorted((await conn.scalars(select(Lead.id))).all())
    assert left == sorted([mine[1], theirs[0]])


async def test_an_import_through_a_real_worker_on_the_low_queue(
    db_engine: AsyncEngine, tenant: Tenant, pool: ArqRedis, make_config: MakeConfig, run_group: RunGroup
) -> None:
    job_id = await add_import(db_engine, tenant, "name,phone\nAda,212 555 0100\nBob,212 555 0101\n")
    job = await enqueue(
        pool, lead_jobs.IMPORT_JOB, job_id, queue=Queue.LOW, job_id=lead_jobs.import_job_id(job_id)
    )
    assert job is not None
    async with run_group(make_config(worker_queues="low")):
        assert await job.result(timeout=20, poll_delay=0.05) == "succeeded"
    assert (await job_row(db_engine, job_id)).result["created"] == 2
    assert await count(db_engine, Lead) == 2
