"""POST /api/leads/bulk: one change (status, owner, tags, delete) to many leads.

Up to 200 ids are changed inside the request (200 with the counts); a filter or more ids become a
``leads.bulk`` background job on the ``low`` queue (202 with the job; progress at /api/jobs/{id}).
Both paths apply :func:`prosaas_common.leads.bulk.apply_change`, so status changes write the same
history and events. Ids of another business are never matched.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from prosaas_api import audit
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.errors import field_error
from prosaas_api.lead_io.jobs import JobRepository, job_out
from prosaas_api.lead_io.schemas import SYNC_BULK_LIMIT, BulkDone, BulkRequest, JobOut
from prosaas_api.leads.query import LeadRepository, business_region
from prosaas_api.tenancy import tenant_of
from prosaas_api.users.service import UserRepository
from prosaas_common.jobs import JobName, Queue, enqueue_after_commit
from prosaas_common.leads.bulk import BulkChange, BulkSelection, apply_change, lock_batch
from prosaas_common.leads.filters import is_phone_query
from prosaas_common.leads.writer import LeadWriter, UnknownStatus
from prosaas_common.models import BackgroundJob, Lead, User
from prosaas_common.web import DbSession, resources_of

router = APIRouter(prefix="/api/leads", tags=["leads"])
Bulker = Annotated[Principal, Depends(require(Permission.LEADS_DELETE))]

BULK_JOB = JobName.LEADS_BULK
BULK_KIND = "leads.bulk"


async def check_targets(body: BulkRequest, principal: Principal, writer: LeadWriter, db: DbSession) -> None:
    """The status and the owner must be this business's (422 otherwise)."""
    if body.action == "set_status" and body.status_id is not None:
        try:
            await writer.status(body.status_id)
        except UnknownStatus:
            raise field_error("status_id", "no such status in this business") from None
    if body.action == "set_owner" and body.owner_user_id is not None:
        owner = await db.scalar(
            UserRepository(db, principal).query().where(User.id == body.owner_user_id, User.is_active)
        )
        if owner is None:
            raise field_error("owner_user_id", "no such active user in this business")


@router.post(
    "/bulk",
    operation_id="leads_bulk",
    response_model=BulkDone | JobOut,
    responses={
        200: {"description": "done in the request (≤ 200 ids)", "model": BulkDone},
        202: {"description": "running as a background job", "model": JobOut},
    },
)
async def bulk_change(
    body: BulkRequest, principal: Bulker, request: Request, response: Response, db: DbSession
) -> BulkDone | JobOut:
    """Change the selected leads: ``{selection: {ids} | {filter}, action, status_id?, owner_user_id?,
    tags?}``."""
    pool = resources_of(request).job_pool
    writer = LeadWriter(db, tenant_of(principal), actor_user_id=principal.user_id, via="bulk", pool=pool)
    await check_targets(body, principal, writer, db)
    change = BulkChange(
        action=body.action,
        status_id=body.status_id,
        owner_user_id=body.owner_user_id,
        tags=tuple(body.tags or ()),
    )
    ids = body.selection.ids
    if ids is not None and len(ids) <= SYNC_BULK_LIMIT:
        query = LeadRepository(db, principal).query().where(Lead.id.in_(ids))
        leads = await lock_batch(db, query, after_id=0, limit=len(ids))
        changed = await apply_change(writer, leads, change)
        await audit.record(
            db,
            principal,
            "leads.bulk_changed",
            "lead",
            None,
            {**change.to_json(), "matched": len(leads), "changed": changed},
        )
        return BulkDone(action=body.action, matched=len(leads), changed=changed)

    lead_filter = body.selection.filter.to_filter() if body.selection.filter else None
    if lead_filter is not None and lead_filter.q and is_phone_query(lead_filter.q):
        # A whole phone number matches exactly, as in the list (national numbers need the region).
        lead_filter = replace(lead_filter, region=await business_region(db, principal))
    selection = BulkSelection(ids=tuple(ids)) if ids is not None else BulkSelection(lead_filter=lead_filter)
    job = await JobRepository(db, principal).add(
        BackgroundJob(
            kind=BULK_KIND,
            params={"selection": selection.to_json(), "change": change.to_json()},
            created_by_user_id=principal.user_id,
        )
    )
    await db.refresh(job, ["created_at"])
    await audit.record(
        db, principal, "leads.bulk_started", "background_job", str(job.id), {**change.to_json()}
    )
    enqueue_after_commit(db, pool, BULK_JOB, str(job.id), queue=Queue.LOW, job_id=f"leads-bulk:{job.id}")
    response.status_code = 202
    return job_out(job)
