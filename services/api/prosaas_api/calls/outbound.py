"""/api/calls/outbound: call a lead now, or run calls over a selection of leads.

``POST /api/calls/outbound`` writes an outbound ``calls`` row (``queued``, a placeholder sid until Twilio
gives one) and, after the commit, queues ``calls.place_outbound``; with an ``Idempotency-Key`` a repeat
answers the first call (200). ``POST /api/calls/outbound/runs`` resolves the selection to lead ids now
(explicit ids in their order, or the leads matching a filter by id; other businesses' ids never match)
and queues ``calls.run_outbound``, which calls them within the business's ``max_outbound_calls``. A run is
watched at ``GET …/runs/{id}`` and stopped with ``POST …/runs/{id}/stop`` (calls already ringing go on).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_api import audit
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.calls.outbound_schemas import MAX_RUN_LEADS, OutboundCallIn, RunIn, RunOut, RunPage
from prosaas_api.calls.router import call_fields
from prosaas_api.calls.schemas import CallOut
from prosaas_api.errors import conflict, field_error
from prosaas_api.ids import QueryId, RowId
from prosaas_api.leads.query import LeadRepository, business_region
from prosaas_api.messaging.messages import IdempotencyKey
from prosaas_api.tenancy import TenantRepository
from prosaas_common.jobs import JobName, Queue, enqueue_after_commit
from prosaas_common.leads.filters import is_phone_query
from prosaas_common.messaging.planner import sending_number
from prosaas_common.models import Call, CallDirection, CallStatus, Lead, OutboundCallRun, RunStatus
from prosaas_common.outbound_calls import (
    DO_NOT_CALL_TAG,
    manual_dedup_key,
    place_job_id,
    placeholder_sid,
    run_job_id,
)
from prosaas_common.web import DbSession, resources_of

router = APIRouter(prefix="/api/calls/outbound", tags=["calls"])
Reader = Annotated[Principal, Depends(require(Permission.LEADS_READ))]
Caller = Annotated[Principal, Depends(require(Permission.LEADS_WRITE))]
# Bulk runs cost money and reach many people: the roles that may make bulk lead changes.
Runner = Annotated[Principal, Depends(require(Permission.LEADS_DELETE))]
NO_NUMBER = "the business has no phone number to call from (add one in Settings → Phone numbers)"


class CallRepository(TenantRepository[Call]):
    model = Call
    label = "call"


class RunRepository(TenantRepository[OutboundCallRun]):
    model = OutboundCallRun
    label = "outbound call run"


def run_out(run: OutboundCallRun) -> RunOut:
    return RunOut(
        id=run.id,
        status=run.status,
        total=run.total,
        processed=run.cursor,
        placed=run.placed,
        failed=run.failed,
        skipped=run.skipped,
        progress=min(1.0, run.cursor / run.total) if run.total else 1.0,
        selection={"filter": run.selection.get("filter")},
        created_by_user_id=run.created_by_user_id,
        created_at=run.created_at,
        updated_at=run.updated_at,
        finished_at=run.finished_at,
    )


async def calling_number(db: AsyncSession, business_id: int, field: str) -> str:
    number = await sending_number(db, business_id)
    if number is None:
        raise field_error(field, NO_NUMBER)
    return number


@router.post(
    "",
    operation_id="calls_outbound_create",
    status_code=202,
    response_model=CallOut,
    responses={
        200: {"description": "a repeated Idempotency-Key: the call of the first request"},
        404: {"description": "no such lead in this business"},
        409: {"description": "the Idempotency-Key was used for another lead"},
        422: {"description": "the lead has no phone or is do-not-call; the business has no number"},
    },
)
async def call_lead(
    body: OutboundCallIn,
    principal: Caller,
    db: DbSession,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> CallOut:
    """Call the lead now from the business's first number; 202 with the call (``queued``). The worker
    places it as soon as the business has a free outbound slot."""
    lead = await LeadRepository(db, principal).get(body.lead_id)
    if not lead.phone:
        raise field_error("lead_id", "the lead has no phone number")
    if DO_NOT_CALL_TAG in lead.tags:
        raise field_error("lead_id", f"the lead is tagged {DO_NOT_CALL_TAG}")
    repository = CallRepository(db, principal)
    business_id = repository.business_id
    dedup_key = manual_dedup_key(business_id, idempotency_key or uuid.uuid4().hex)
    call_id = await db.scalar(
        insert(Call)
        .values(
            business_id=business_id,
            call_sid=placeholder_sid(),
            direction=CallDirection.OUTBOUND.value,
            from_number=await calling_number(db, business_id, "lead_id"),
            to_number=lead.phone,
            lead_id=lead.id,
            status=CallStatus.QUEUED.value,
            dedup_key=dedup_key,
        )
        .on_conflict_do_nothing(index_elements=[Call.dedup_key])
        .returning(Call.id)
    )
    if call_id is None:  # this key was used before: answer that call
        first = await db.scalar(repository.query().where(Call.dedup_key == dedup_key))
        assert first is not None  # the key names this business
        if first.lead_id != lead.id:
            raise conflict("this Idempotency-Key was used for another call; use a new key")
        response.status_code = 200
        return CallOut.model_validate(call_fields(first))
    call = await repository.get(call_id)
    await audit.record(db, principal, "calls.outbound_requested", "call", call.id, {"lead_id": lead.id})
    enqueue_after_commit(
        db,
        resources_of(request).job_pool,
        JobName.CALLS_PLACE_OUTBOUND,
        call.id,
        queue=Queue.DEFAULT,
        job_id=place_job_id(call.id),
    )
    return CallOut.model_validate(call_fields(call))


async def selected_lead_ids(db: AsyncSession, principal: Principal, body: RunIn) -> list[int]:
    """The business's leads the run calls, in calling order; 422 when there are none or too many."""
    leads = LeadRepository(db, principal)
    if body.lead_ids is not None:
        ordered = list(dict.fromkeys(body.lead_ids))
        own = set(
            await db.scalars(
                select(Lead.id).where(Lead.id.in_(ordered), Lead.business_id == leads.business_id)
            )
        )
        ids = [lead_id for lead_id in ordered if lead_id in own]
        field = "lead_ids"
    else:
        assert body.filter is not None
        lead_filter = body.filter.to_filter()
        if lead_filter.q and is_phone_query(lead_filter.q):
            lead_filter = replace(lead_filter, region=await business_region(db, principal))
        query = (
            leads.matching(lead_filter).with_only_columns(Lead.id).order_by(Lead.id).limit(MAX_RUN_LEADS + 1)
        )
        ids = list(await db.scalars(query))
        field = "filter"
    if not ids:
        raise field_error(field, "no lead of this business matches")
    if len(ids) > MAX_RUN_LEADS:
        raise field_error(field, f"matches more than {MAX_RUN_LEADS} leads; narrow it down")
    return ids


@router.post(
    "/runs",
    operation_id="calls_outbound_runs_create",
    status_code=202,
    response_model=RunOut,
    responses={422: {"description": "no lead matches, too many, or the business has no number"}},
)
async def start_run(body: RunIn, principal: Runner, db: DbSession, request: Request) -> RunOut:
    """Call every selected lead (``{lead_ids}`` or ``{filter}``), at most ``max_outbound_calls`` at once;
    202 with the run. Leads without a phone or tagged ``do-not-call`` are skipped."""
    repository = RunRepository(db, principal)
    await calling_number(db, repository.business_id, "lead_ids" if body.lead_ids is not None else "filter")
    ids = await selected_lead_ids(db, principal, body)
    selection: dict[str, Any] = {
        "lead_ids": ids,
        "filter": body.filter.model_dump(mode="json") if body.filter is not None else None,
    }
    run = await repository.add(
        OutboundCallRun(selection=selection, total=len(ids), created_by_user_id=principal.user_id)
    )
    await db.refresh(run)
    await audit.record(
        db, principal, "calls.outbound_run_started", "outbound_call_run", run.id, {"total": len(ids)}
    )
    enqueue_after_commit(
        db,
        resources_of(request).job_pool,
        JobName.CALLS_RUN_OUTBOUND,
        run.id,
        0,
        queue=Queue.DEFAULT,
        job_id=run_job_id(run.id, 0),
    )
    return run_out(run)


@router.get("/runs", operation_id="calls_outbound_runs_list", response_model=RunPage)
async def list_runs(
    principal: Reader,
    db: DbSession,
    before: QueryId | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RunPage:
    """Newest first, keyset pages (pass ``next_before`` as ``before``)."""
    repository = RunRepository(db, principal)
    rows, next_before = await repository.newest_first(repository.query(), before, limit)
    return RunPage(items=[run_out(run) for run in rows], next_before=next_before)


@router.get("/runs/{run_id}", operation_id="calls_outbound_runs_get", response_model=RunOut)
async def get_run(run_id: RowId, principal: Reader, db: DbSession) -> RunOut:
    return run_out(await RunRepository(db, principal).get(run_id))


@router.post("/runs/{run_id}/stop", operation_id="calls_outbound_runs_stop", response_model=RunOut)
async def stop_run(run_id: RowId, principal: Runner, db: DbSession, request: Request) -> RunOut:
    """A running run becomes ``stopping`` and the worker stops it at its next step (``stopped``): no new
    call is placed, calls already ringing go on. A finished run is answered as it is."""
    run = await RunRepository(db, principal).get(run_id, for_update=True)
    if run.status == RunStatus.RUNNING:
        run.status = RunStatus.STOPPING.value
        await db.flush()
        await db.refresh(run)
        await audit.record(db, principal, "calls.outbound_run_stopped", "outbound_call_run", run.id)
        # The run's current step: arq drops it while that step is queued or running, so this only
        # starts a step when none is alive.
        enqueue_after_commit(
            db,
            resources_of(request).job_pool,
            JobName.CALLS_RUN_OUTBOUND,
            run.id,
            run.wakeups,
            queue=Queue.DEFAULT,
            job_id=run_job_id(run.id, run.wakeups),
        )
    return run_out(run)
