"""Long lead operations of a business, each tracked by a ``background_jobs`` row the api shows at
``GET /api/jobs/{id}``: ``leads_import(job_id)`` and ``leads_bulk(job_id)`` (queue ``low``).

Both work in batches, one transaction per batch that also moves the job's progress — the cursor (rows
done for an import, the last lead id for a bulk change) lives in the job row, so a job whose worker
died continues after its last committed batch and never applies a row twice. The job row is locked
for each batch, so a duplicate run waits and then continues from the same cursor. An error ends the
job as ``failed`` with its message; a cancelled job (shutdown, timeout) stays ``running`` and resumes
when arq runs it again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.db import unit_of_work
from prosaas_common.jobs import JobName
from prosaas_common.leads.bulk import BulkChange, BulkSelection, apply_change, count_matching, lock_batch
from prosaas_common.leads.importing import (
    DataRow,
    ImportFileError,
    MappingError,
    ParsedFile,
    StatusLookup,
    check_mapping,
    parse_file,
    row_values,
)
from prosaas_common.leads.writer import LeadWriter, UnknownStatus
from prosaas_common.logging import get_logger
from prosaas_common.models import BackgroundJob, Business, JobState, LeadImport, LeadStatus
from prosaas_worker.context import JobContext, get_resources, job_pool
from prosaas_worker.registry import JobSpec, job

IMPORT_JOB = JobName.LEADS_IMPORT
BULK_JOB = JobName.LEADS_BULK
IMPORT_BATCH = 500
BULK_BATCH = 500
MAX_ERRORS = 500
FINISHED = frozenset({JobState.SUCCEEDED.value, JobState.FAILED.value})

log = get_logger("prosaas.worker.leads")


class JobFailure(Exception):
    """A job that cannot go on for a reason the user should read (the job's ``result.error``)."""


def import_job_id(job_id: uuid.UUID | str) -> str:
    return f"leads-import:{job_id}"


def bulk_job_id(job_id: uuid.UUID | str) -> str:
    return f"leads-bulk:{job_id}"


async def locked_job(db: AsyncSession, job_id: uuid.UUID) -> BackgroundJob | None:
    return await db.scalar(select(BackgroundJob).where(BackgroundJob.id == job_id).with_for_update())


def add_errors(job_row: BackgroundJob, errors: list[dict[str, Any]]) -> None:
    """Append per-item errors, keeping at most MAX_ERRORS (the counts stay exact)."""
    room = MAX_ERRORS - len(job_row.errors or [])
    if errors and room > 0:
        job_row.errors = [*(job_row.errors or []), *errors[:room]]


async def begin(db: AsyncSession, job_id: uuid.UUID) -> BackgroundJob | None:
    """Lock the job and mark it running; None when it is missing or already finished."""
    job_row = await locked_job(db, job_id)
    if job_row is None or job_row.state in FINISHED:
        return None
    job_row.state = JobState.RUNNING.value
    if job_row.started_at is None:
        job_row.started_at = func.now()
    return job_row


def finish(job_row: BackgroundJob, result: dict[str, Any]) -> None:
    job_row.state = JobState.SUCCEEDED.value
    job_row.result = result
    job_row.finished_at = func.now()


async def fail(ctx: JobContext, job_id: uuid.UUID, message: str) -> str:
    """End the job as failed (own transaction: the failing batch was rolled back)."""
    async with unit_of_work(get_resources(ctx).session_factory) as db:
        job_row = await locked_job(db, job_id)
        if job_row is not None and job_row.state not in FINISHED:
            job_row.state = JobState.FAILED.value
            job_row.result = {**(job_row.result or {}), "error": message[:1000]}
            job_row.finished_at = func.now()
    log.warning("leads_job.failed", background_job_id=str(job_id), error=message[:300])
    return "failed"


async def run_guarded(ctx: JobContext, job_id: uuid.UUID, work: Callable[[], Awaitable[str]]) -> str:
    try:
        return await work()
    except JobFailure as exc:
        return await fail(ctx, job_id, str(exc))
    except Exception as exc:
        await fail(ctx, job_id, f"{type(exc).__name__}: {exc}")
        raise


# import ------------------------------------------------------------------------------------------
@dataclass
class ImportPlan:
    business_id: int
    actor_user_id: int | None
    dry_run: bool
    default_status_id: int | None
    region: str
    statuses: StatusLookup
    parsed: ParsedFile
    mapping: dict[str, str]


@dataclass
class BatchOutcome:
    created: int = 0
    updated: int = 0
    valid: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    failed_rows: int = 0


async def load_import(db: AsyncSession, job_row: BackgroundJob) -> ImportPlan:
    params = job_row.params or {}
    upload = await db.get(LeadImport, uuid.UUID(str(params.get("import_id"))))
    if upload is None or upload.business_id != job_row.business_id:
        raise JobFailure("the uploaded file is gone")
    business = await db.get(Business, job_row.business_id)
    region = business.default_region if business is not None else "US"
    rows = await db.execute(
        select(LeadStatus.id, LeadStatus.key, LeadStatus.name).where(
            LeadStatus.business_id == job_row.business_id
        )
    )
    statuses = StatusLookup((row.id, row.key, row.name) for row in rows)
    try:
        parsed = await asyncio.to_thread(parse_file, upload.content, upload.filename)
        mapping = check_mapping(params.get("mapping") or upload.mapping or {}, parsed.columns)
    except (ImportFileError, MappingError) as exc:
        raise JobFailure(str(exc)) from None
    return ImportPlan(
        business_id=job_row.business_id,
        actor_user_id=job_row.created_by_user_id,
        dry_run=bool(params.get("dry_run")),
        default_status_id=params.get("default_status_id"),
        region=region,
        statuses=statuses,
        parsed=parsed,
        mapping=mapping,
    )


async def import_rows(writer: LeadWriter | None, plan: ImportPlan, rows: list[DataRow]) -> BatchOutcome:
    """Validate each row and (unless dry run) upsert it; a named status also moves an existing lead."""
    outcome = BatchOutcome()
    for row in rows:
        checked = row_values(
            row, plan.parsed.columns, plan.mapping, region=plan.region, statuses=plan.statuses
        )
        if not checked.ok:
            outcome.failed_rows += 1
            outcome.errors.extend(error.as_dict() for error in checked.errors)
            continue
        outcome.valid += 1
        if writer is None:
            continue
        try:
            lead, created = await writer.upsert(checked.values, checked.status_id or plan.default_status_id)
            if not created and checked.status_id is not None:
                await writer.change_status(lead, checked.status_id)
        except UnknownStatus as exc:
            outcome.valid -= 1
            outcome.failed_rows += 1
            outcome.errors.append({"row": row.number, "field": "status", "message": str(exc)})
            continue
        if created:
            outcome.created += 1
        else:
            outcome.updated += 1
    return outcome


def import_result(job_row: BackgroundJob, plan: ImportPlan, outcome: BatchOutcome) -> dict[str, Any]:
    before = job_row.result or {}
    if plan.dry_run:
        return {"dry_run": True, "valid": before.get("valid", 0) + outcome.valid, "failed": job_row.failed}
    return {
        "dry_run": False,
        "created": before.get("created", 0) + outcome.created,
        "updated": before.get("updated", 0) + outcome.updated,
        "failed": job_row.failed,
    }


async def leads_import(ctx: JobContext, job_id: str) -> str:
    """Import the rows of a ``lead_imports`` file; returns ``succeeded``, ``failed`` or ``skipped``."""
    key = uuid.UUID(job_id)
    factory = get_resources(ctx).session_factory

    async def work() -> str:
        async with unit_of_work(factory) as db:
            job_row = await begin(db, key)
            if job_row is None:
                return "skipped"
            plan = await load_import(db, job_row)
            job_row.total = len(plan.parsed.rows)
        log.debug("leads.import_started", background_job_id=job_id, rows=len(plan.parsed.rows))
        while True:
            async with unit_of_work(factory) as db:
                job_row = await locked_job(db, key)
                if job_row is None or job_row.state in FINISHED:
                    return "skipped"
                start = job_row.processed
                batch = plan.parsed.rows[start : start + IMPORT_BATCH]
                if not batch:
                    finish(job_row, import_result(job_row, plan, BatchOutcome()))
                    break
                writer = None
                if not plan.dry_run:
                    writer = LeadWriter(
                        db,
                        plan.business_id,
                        actor_user_id=plan.actor_user_id,
                        via="import",
                        pool=job_pool(ctx),
                    )
                outcome = await import_rows(writer, plan, batch)
                job_row.processed = start + len(batch)
                job_row.succeeded += outcome.valid
                job_row.failed += outcome.failed_rows
                add_errors(job_row, outcome.errors)
                job_row.result = import_result(job_row, plan, outcome)
        log.info("leads.import_finished", background_job_id=job_id, rows=len(plan.parsed.rows))
        return "succeeded"

    return await run_guarded(ctx, key, work)


# bulk --------------------------------------------------------------------------------------------
async def leads_bulk(ctx: JobContext, job_id: str) -> str:
    """Apply a bulk change to every matching lead; returns ``succeeded``, ``failed`` or ``skipped``."""
    key = uuid.UUID(job_id)
    factory = get_resources(ctx).session_factory

    async def work() -> str:
        async with unit_of_work(factory) as db:
            job_row = await begin(db, key)
            if job_row is None:
                return "skipped"
            business_id, actor = job_row.business_id, job_row.created_by_user_id
            try:
                selection = BulkSelection.from_json(job_row.params["selection"])
                change = BulkChange.from_json(job_row.params["change"])
            except (KeyError, TypeError, ValueError) as exc:
                raise JobFailure(f"the job's parameters are invalid ({exc})") from None
            if job_row.processed == 0:
                job_row.total = await count_matching(db, selection.query(business_id))
        while True:
            async with unit_of_work(factory) as db:
                job_row = await locked_job(db, key)
                if job_row is None or job_row.state in FINISHED:
                    return "skipped"
                cursor = int((job_row.result or {}).get("last_id", 0))
                leads = await lock_batch(db, selection.query(business_id), after_id=cursor, limit=BULK_BATCH)
                if not leads:
                    finish(job_row, {"matched": job_row.processed, "changed": job_row.succeeded})
                    break
                last_id = leads[-1].id
                writer = LeadWriter(db, business_id, actor_user_id=actor, via="bulk", pool=job_pool(ctx))
                try:
                    changed = await apply_change(writer, leads, change)
                except UnknownStatus as exc:
                    raise JobFailure(str(exc)) from None
                job_row.processed += len(leads)
                job_row.succeeded += changed
                job_row.result = {
                    "matched": job_row.processed,
                    "changed": job_row.succeeded,
                    "last_id": last_id,
                }
        log.info("leads.bulk_finished", background_job_id=job_id, action=change.action)
        return "succeeded"

    return await run_guarded(ctx, key, work)


JOBS: tuple[JobSpec, ...] = (
    job(leads_import, name=IMPORT_JOB, max_tries=5, timeout_s=3600),
    job(leads_bulk, name=BULK_JOB, max_tries=5, timeout_s=3600),
)
