"""/api/leads: the CRM's leads — list and search, create (deduplicated by phone), read, update,
delete, and kanban moves. Notes and the timeline are in :mod:`prosaas_api.leads.notes`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic_core import to_json
from sqlalchemy import func

from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.errors import field_error
from prosaas_api.ids import RowId
from prosaas_api.leads import service
from prosaas_api.leads.query import LeadRepository, StatusRepository, lead_filter
from prosaas_api.leads.schemas import (
    Board,
    BoardColumn,
    LeadCount,
    LeadCreate,
    LeadOut,
    LeadPage,
    LeadUpdate,
    MoveRequest,
    SortKey,
    StatusRef,
)
from prosaas_common.leads.filters import LeadFilter
from prosaas_common.leads.writer import UnknownStatus
from prosaas_common.models import Lead
from prosaas_common.web import DbSession

router = APIRouter(prefix="/api/leads", tags=["leads"])
Reader = Annotated[Principal, Depends(require(Permission.LEADS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.LEADS_WRITE))]
Deleter = Annotated[Principal, Depends(require(Permission.LEADS_DELETE))]
Filter = Annotated[LeadFilter, Depends(lead_filter)]


@router.get("", operation_id="leads_list", response_model=LeadPage)
async def list_leads(
    principal: Reader,
    db: DbSession,
    lead_filter: Filter,
    sort: SortKey = "-created_at",
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Filtered, searched leads; keyset pages (stable while leads are added)."""
    # The hottest route: Core queries (no ORM objects), rows serialised once by pydantic-core.
    repository = LeadRepository(db, principal)
    query = service.keyset_page(repository.matching(lead_filter), sort, cursor, limit)
    connection = await db.connection()
    rows = (await connection.execute(query.with_only_columns(*service.LIST_COLUMNS))).all()
    page = rows[:limit]
    statuses = await service.status_json(connection, StatusRepository(db, principal))
    body = {
        "items": [service.lead_row_json(row, statuses) for row in page],
        "next_cursor": service.encode_cursor(sort, page[-1]) if len(rows) > limit else None,
    }
    return Response(to_json(body), media_type="application/json")


@router.get("/count", operation_id="leads_count", response_model=LeadCount)
async def count_leads(principal: Reader, db: DbSession, lead_filter: Filter) -> LeadCount:
    query = LeadRepository(db, principal).matching(lead_filter).with_only_columns(func.count(Lead.id))
    return LeadCount(count=await db.scalar(query) or 0)


@router.get("/board", operation_id="leads_board", response_model=Board)
async def board(
    principal: Reader,
    db: DbSession,
    lead_filter: Filter,
    per_column: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Board:
    """The kanban: every status in order with its lead count and its first leads in column order."""
    statuses = await service.statuses_by_id(db, principal)
    repository = LeadRepository(db, principal)
    counted = repository.matching(lead_filter).with_only_columns(Lead.status_id, func.count(Lead.id))
    counts = {status_id: count for status_id, count in await db.execute(counted.group_by(Lead.status_id))}
    columns = []
    for status in sorted(statuses.values(), key=lambda s: (s.position, s.id)):
        leads = await db.scalars(
            repository.matching(lead_filter)
            .where(Lead.status_id == status.id)
            .order_by(Lead.rank, Lead.id)
            .limit(per_column)
        )
        columns.append(
            BoardColumn(
                status=StatusRef(id=status.id, key=status.key, name=status.name, color=status.color),
                count=counts.get(status.id, 0),
                leads=[service.lead_out(lead, statuses) for lead in leads],
            )
        )
    return Board(columns=columns)


@router.post(
    "",
    operation_id="leads_create",
    status_code=201,
    response_model=LeadOut,
    responses={200: {"model": LeadOut, "description": "a lead with this phone existed and was updated"}},
)
async def create_lead(
    body: LeadCreate, principal: Writer, db: DbSession, request: Request, response: Response
) -> LeadOut:
    values = service.name_values(body.name, await service.normalised(db, principal, body))
    if not (
        values.get("first_name") or values.get("last_name") or values.get("phone") or values.get("email")
    ):
        raise field_error("name", "a lead needs at least a name, a phone or an e-mail")
    writer = service.writer_for(request, db, principal)
    try:
        lead, created = await writer.upsert(values, status_id=body.status_id)
    except UnknownStatus:
        raise field_error("status_id", "no such status in this business") from None
    if not created:
        response.status_code = 200
        if body.status_id is not None:
            await service.apply_status(writer, lead, body.status_id)
    response.headers["Location"] = f"/api/leads/{lead.id}"
    return service.lead_out(lead, await service.statuses_by_id(db, principal), created=created)


@router.get("/{lead_id}", operation_id="leads_get", response_model=LeadOut)
async def get_lead(lead_id: RowId, principal: Reader, db: DbSession) -> LeadOut:
    lead = await LeadRepository(db, principal).get(lead_id)
    return service.lead_out(lead, await service.statuses_by_id(db, principal))


@router.patch("/{lead_id}", operation_id="leads_update", response_model=LeadOut)
async def update_lead(
    lead_id: RowId, body: LeadUpdate, principal: Writer, db: DbSession, request: Request
) -> LeadOut:
    lead = await LeadRepository(db, principal).get(lead_id)
    values = await service.normalised(db, principal, body)
    writer = service.writer_for(request, db, principal)
    if body.status_id is not None and body.status_id != lead.status_id:
        await service.apply_status(writer, lead, body.status_id)
    await service.update_lead(writer, lead, values)
    return service.lead_out(lead, await service.statuses_by_id(db, principal))


@router.delete("/{lead_id}", operation_id="leads_delete", status_code=204)
async def delete_lead(lead_id: RowId, principal: Deleter, db: DbSession, request: Request) -> Response:
    lead = await LeadRepository(db, principal).get(lead_id, for_update=True)
    await service.writer_for(request, db, principal).delete(lead)
    return Response(status_code=204)


@router.post("/{lead_id}/move", operation_id="leads_move", response_model=LeadOut)
async def move_lead(
    lead_id: RowId, body: MoveRequest, principal: Writer, db: DbSession, request: Request
) -> LeadOut:
    """Kanban drag: put the lead at ``position`` (0-based) of the column of ``status_id``."""
    lead = await LeadRepository(db, principal).get(lead_id)
    try:
        await service.move(
            service.writer_for(request, db, principal, via="kanban"), lead, body.status_id, body.position
        )
    except UnknownStatus:
        raise field_error("status_id", "no such status in this business") from None
    return service.lead_out(lead, await service.statuses_by_id(db, principal))
