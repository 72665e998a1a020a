"""A lead's notes, timeline and status history, newest first, keyset-paginated by id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from prosaas_api.auth.permissions import Permission, allows
from prosaas_api.auth.principal import Principal, require
from prosaas_api.ids import MAX_ROW_ID, RowId
from prosaas_api.leads import service
from prosaas_api.leads.query import LeadRepository
from prosaas_api.leads.schemas import (
    ActivityOut,
    NoteCreate,
    NoteOut,
    NotePage,
    StatusChangeOut,
    TimelinePage,
)
from prosaas_api.tenancy import TenantRepository
from prosaas_common.models import LeadActivity, LeadNote, LeadStatusChange
from prosaas_common.web import DbSession

router = APIRouter(prefix="/api/leads/{lead_id}", tags=["leads"])
Reader = Annotated[Principal, Depends(require(Permission.LEADS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.LEADS_WRITE))]
Before = Annotated[int | None, Query(gt=0, le=MAX_ROW_ID, description="only entries older than this id")]
Limit = Annotated[int, Query(ge=1, le=200)]


class NoteRepository(TenantRepository[LeadNote]):
    model = LeadNote
    label = "note"


class ActivityRepository(TenantRepository[LeadActivity]):
    model = LeadActivity
    label = "activity"


class StatusChangeRepository(TenantRepository[LeadStatusChange]):
    model = LeadStatusChange
    label = "status change"


def note_out(note: LeadNote) -> NoteOut:
    return NoteOut.model_validate(note, from_attributes=True)


@router.get("/notes", operation_id="lead_notes_list", response_model=NotePage)
async def list_notes(
    lead_id: RowId, principal: Reader, db: DbSession, before: Before = None, limit: Limit = 50
) -> NotePage:
    await LeadRepository(db, principal).get(lead_id)
    notes = NoteRepository(db, principal)
    page, next_before = await notes.newest_first(
        notes.query().where(LeadNote.lead_id == lead_id), before, limit
    )
    return NotePage(items=[note_out(n) for n in page], next_before=next_before)


@router.post("/notes", operation_id="lead_notes_create", status_code=201, response_model=NoteOut)
async def add_note(
    lead_id: RowId, body: NoteCreate, principal: Writer, db: DbSession, request: Request
) -> NoteOut:
    lead = await LeadRepository(db, principal).get(lead_id)
    note = await service.writer_for(request, db, principal).add_note(lead, body.body)
    await db.refresh(note)
    return note_out(note)


async def own_note(db: DbSession, principal: Principal, lead_id: RowId, note_id: RowId) -> LeadNote:
    """The note, if the caller wrote it or may manage leads (owners, admins)."""
    note = await NoteRepository(db, principal).get(note_id, for_update=True)
    if note.lead_id != lead_id:
        raise service.lead_not_found()
    if note.author_user_id != principal.user_id and not allows(principal.role, Permission.LEADS_DELETE):
        raise HTTPException(status_code=403, detail="only the author, an owner or an admin changes a note")
    return note


@router.patch("/notes/{note_id}", operation_id="lead_notes_update", response_model=NoteOut)
async def edit_note(
    lead_id: RowId, note_id: RowId, body: NoteCreate, principal: Writer, db: DbSession
) -> NoteOut:
    note = await own_note(db, principal, lead_id, note_id)
    note.body = body.body
    await db.flush()
    await db.refresh(note)
    return note_out(note)


@router.delete("/notes/{note_id}", operation_id="lead_notes_delete", status_code=204)
async def delete_note(lead_id: RowId, note_id: RowId, principal: Writer, db: DbSession) -> Response:
    note = await own_note(db, principal, lead_id, note_id)
    await db.delete(note)
    return Response(status_code=204)


@router.get("/timeline", operation_id="leads_timeline", response_model=TimelinePage)
async def timeline(
    lead_id: RowId, principal: Reader, db: DbSession, before: Before = None, limit: Limit = 50
) -> TimelinePage:
    """Everything that happened to the lead: created, updates, status changes, notes (later calls,
    messages and appointments)."""
    await LeadRepository(db, principal).get(lead_id)
    activities = ActivityRepository(db, principal)
    query = activities.query().where(LeadActivity.lead_id == lead_id)
    page, next_before = await activities.newest_first(query, before, limit)
    return TimelinePage(
        items=[ActivityOut.model_validate(a, from_attributes=True) for a in page], next_before=next_before
    )


@router.get("/status-history", operation_id="leads_status_history", response_model=list[StatusChangeOut])
async def status_history(lead_id: RowId, principal: Reader, db: DbSession) -> list[StatusChangeOut]:
    await LeadRepository(db, principal).get(lead_id)
    rows = await db.scalars(
        StatusChangeRepository(db, principal)
        .query()
        .where(LeadStatusChange.lead_id == lead_id)
        .order_by(LeadStatusChange.id.desc())
        .limit(500)
    )
    return [StatusChangeOut.model_validate(c, from_attributes=True) for c in rows]
