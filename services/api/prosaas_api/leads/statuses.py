"""/api/lead-statuses: a business's kanban columns — create, rename, recolor, make default, reorder,
delete (never while leads use a system status; other statuses hand their leads to another first)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError

from prosaas_api import audit
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.errors import conflict, field_error
from prosaas_api.ids import MAX_ROW_ID, RowId
from prosaas_api.leads import service
from prosaas_api.leads.query import LeadRepository, StatusRepository
from prosaas_api.leads.schemas import StatusCreate, StatusOut, StatusReorder, StatusUpdate
from prosaas_common.models import Lead, LeadStatus
from prosaas_common.web import DbSession

router = APIRouter(prefix="/api/lead-statuses", tags=["lead statuses"])
Reader = Annotated[Principal, Depends(require(Permission.LEADS_READ))]
Manager = Annotated[Principal, Depends(require(Permission.STATUSES_MANAGE))]


async def lead_counts(db: DbSession, principal: Principal) -> dict[int, int]:
    query = (
        LeadRepository(db, principal)
        .query()
        .with_only_columns(Lead.status_id, func.count(Lead.id))
        .group_by(Lead.status_id)
    )
    return {status_id: count for status_id, count in await db.execute(query)}


def status_out(status: LeadStatus, counts: dict[int, int]) -> StatusOut:
    return StatusOut(
        id=status.id,
        key=status.key,
        name=status.name,
        color=status.color,
        position=status.position,
        is_default=status.is_default,
        is_system=status.is_system,
        lead_count=counts.get(status.id, 0),
    )


async def ordered(db: DbSession, principal: Principal) -> list[LeadStatus]:
    repository = StatusRepository(db, principal)
    return list(await db.scalars(repository.query().order_by(LeadStatus.position, LeadStatus.id)))


def slug(name: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:50]
    return key if key and key[0].isalpha() else f"s_{key}"[:50]


async def make_default(db: DbSession, principal: Principal, status: LeadStatus) -> None:
    """Clear the old default first: at most one default per business (partial unique index)."""
    repository = StatusRepository(db, principal)
    await db.execute(
        update(LeadStatus)
        .where(LeadStatus.business_id == repository.business_id, LeadStatus.id != status.id)
        .values(is_default=False)
    )
    status.is_default = True
    await db.flush()


@router.get("", operation_id="lead_statuses_list", response_model=list[StatusOut])
async def list_statuses(principal: Reader, db: DbSession) -> list[StatusOut]:
    counts = await lead_counts(db, principal)
    return [status_out(s, counts) for s in await ordered(db, principal)]


@router.post("", operation_id="lead_statuses_create", status_code=201, response_model=StatusOut)
async def create_status(body: StatusCreate, principal: Manager, db: DbSession) -> StatusOut:
    statuses = await ordered(db, principal)
    key = body.key or slug(body.name)
    if any(s.key == key for s in statuses):
        raise conflict("a status with this key exists", field="key", key=key)
    if len(statuses) >= 30:
        raise conflict("a business has at most 30 statuses")
    status = LeadStatus(key=key, name=body.name, color=body.color, position=len(statuses))
    try:
        await StatusRepository(db, principal).add(status)
    except IntegrityError:
        raise conflict("a status with this key exists", field="key", key=key) from None
    if body.is_default:
        await make_default(db, principal, status)
    await audit.record(db, principal, "lead_status.created", "lead_status", status.id, {"key": key})
    return status_out(status, {})


@router.patch("/{status_id}", operation_id="lead_statuses_update", response_model=StatusOut)
async def update_status(status_id: RowId, body: StatusUpdate, principal: Manager, db: DbSession) -> StatusOut:
    status = await StatusRepository(db, principal).get(status_id, for_update=True)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "name" in changes:
        status.name = changes["name"]
    if "color" in changes:
        status.color = changes["color"]
    if changes.get("is_default"):
        await make_default(db, principal, status)
    await db.flush()
    await audit.record(db, principal, "lead_status.updated", "lead_status", status.id, {"changes": changes})
    return status_out(status, await lead_counts(db, principal))


@router.post("/reorder", operation_id="lead_statuses_reorder", response_model=list[StatusOut])
async def reorder(body: StatusReorder, principal: Manager, db: DbSession) -> list[StatusOut]:
    """``ids`` must name every status of the business exactly once."""
    statuses = {s.id: s for s in await ordered(db, principal)}
    if sorted(body.ids) != sorted(statuses):
        raise field_error("ids", "list every status of the business exactly once")
    for position, status_id in enumerate(body.ids):
        statuses[status_id].position = position
    await db.flush()
    await audit.record(db, principal, "lead_status.reordered", "business", None, {"ids": body.ids})
    counts = await lead_counts(db, principal)
    return [status_out(statuses[i], counts) for i in body.ids]


@router.delete(
    "/{status_id}",
    operation_id="lead_statuses_delete",
    status_code=204,
    responses={
        409: {"description": "the default status; or leads use it (a system status, or no move_leads_to)"}
    },
)
async def delete_status(
    status_id: RowId,
    principal: Manager,
    db: DbSession,
    request: Request,
    move_leads_to: Annotated[
        int | None, Query(gt=0, le=MAX_ROW_ID, description="status that takes this one's leads")
    ] = None,
) -> Response:
    repository = StatusRepository(db, principal)
    status = await repository.get(status_id, for_update=True)
    if status.is_default:
        raise conflict("the default status cannot be deleted; make another status the default first")
    in_use = (await lead_counts(db, principal)).get(status.id, 0)
    if in_use and status.is_system:
        raise conflict(f"{in_use} leads use this system status; move them first", lead_count=in_use)
    if in_use and move_leads_to is None:
        raise conflict(f"{in_use} leads use this status; pass move_leads_to", lead_count=in_use)
    if in_use:
        assert move_leads_to is not None
        if move_leads_to == status.id:
            raise field_error("move_leads_to", "choose another status", location="query")
        target = await db.scalar(repository.query().where(LeadStatus.id == move_leads_to))
        if target is None:
            raise field_error("move_leads_to", "no such status in this business", location="query")
        writer = service.writer_for(request, db, principal, via="status_deleted")
        leads = await db.scalars(
            LeadRepository(db, principal).query().where(Lead.status_id == status.id).with_for_update()
        )
        for lead in list(leads):
            await writer.change_status(lead, target.id)
    await db.delete(status)
    await db.flush()
    await audit.record(
        db, principal, "lead_status.deleted", "lead_status", status_id, {"key": status.key, "moved": in_use}
    )
    return Response(status_code=204)
