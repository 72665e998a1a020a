"""Lead operations behind the routes: input normalisation, keyset pages, kanban moves."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import Row, Select, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from prosaas_api.auth.principal import Principal
from prosaas_api.errors import conflict, field_error
from prosaas_api.leads.query import StatusRepository
from prosaas_api.leads.schemas import LeadFields, LeadOut, SortKey, StatusRef
from prosaas_api.tenancy import not_found
from prosaas_common.leads.values import InvalidLeadValue, email_or_none, phone_or_none, split_name
from prosaas_common.leads.writer import DuplicatePhone, LeadWriter, UnknownStatus
from prosaas_common.models import Business, Lead, LeadStatus, User
from prosaas_common.web import resources_of

# Neighbour ranks closer than this are renumbered before a lead goes between them.
MIN_RANK_GAP = 1e-6
RENUMBER_STEP = 1024.0


def writer_for(request: Request, db: AsyncSession, principal: Principal, via: str = "api") -> LeadWriter:
    business_id = StatusRepository(db, principal).business_id
    return LeadWriter(
        db, business_id, actor_user_id=principal.user_id, via=via, pool=resources_of(request).job_pool
    )


async def statuses_by_id(db: AsyncSession, principal: Principal) -> dict[int, LeadStatus]:
    rows = await db.scalars(StatusRepository(db, principal).query())
    return {status.id: status for status in rows}


def status_ref(status: LeadStatus) -> StatusRef:
    return StatusRef.model_construct(id=status.id, key=status.key, name=status.name, color=status.color)


def lead_out(lead: Lead, statuses: dict[int, LeadStatus], *, created: bool | None = None) -> LeadOut:
    """The response model of a lead row (built without re-validating what the database holds)."""
    return LeadOut.model_construct(
        id=lead.id,
        first_name=lead.first_name,
        last_name=lead.last_name,
        full_name=lead.full_name,
        phone=lead.phone,
        email=lead.email,
        company=lead.company,
        source=lead.source,
        status=status_ref(statuses[lead.status_id]),
        owner_user_id=lead.owner_user_id,
        tags=list(lead.tags or []),
        reason=lead.reason,
        fields=dict(lead.fields or {}),
        created_at=lead.created_at,
        updated_at=lead.updated_at,
        status_changed_at=lead.status_changed_at,
        created=created,
    )


async def normalised(
    db: AsyncSession, principal: Principal, body: LeadFields, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The body's set fields as column values: phone in E.164, e-mail lower-cased, owner checked."""
    values = body.model_dump(exclude_unset=True, exclude={"status_id", "name"})
    values.update(extra or {})
    business = await db.get(Business, StatusRepository(db, principal).business_id)
    assert business is not None
    try:
        if "phone" in values:
            values["phone"] = phone_or_none(values["phone"], business.default_region)
        if "email" in values:
            values["email"] = email_or_none(values["email"])
    except InvalidLeadValue as exc:
        raise field_error(exc.field, exc.message) from None
    for key in ("first_name", "last_name", "company", "reason", "source"):
        if key in values and values[key] is None:
            values[key] = "manual" if key == "source" else ""
    if values.get("tags") is None:
        values.pop("tags", None)
    if values.get("fields") is None:
        values.pop("fields", None)
    owner = values.get("owner_user_id")
    if owner is not None:
        user = await db.scalar(
            select(User.id).where(User.id == owner, User.business_id == business.id, User.is_active)
        )
        if user is None:
            raise field_error("owner_user_id", "not an active user of this business")
    return values


def name_values(name: str | None, values: dict[str, Any]) -> dict[str, Any]:
    if name and not values.get("first_name") and not values.get("last_name"):
        values["first_name"], values["last_name"] = split_name(name)
    return values


async def apply_status(writer: LeadWriter, lead: Lead, status_id: int) -> None:
    try:
        await move(writer, lead, status_id, position=0)
    except UnknownStatus:
        raise field_error("status_id", "no such status in this business") from None


async def update_lead(writer: LeadWriter, lead: Lead, values: dict[str, Any]) -> None:
    try:
        await writer.update(lead, values)
    except DuplicatePhone as exc:
        raise conflict("another lead of this business has this phone number", lead_id=exc.lead_id) from None


# The list's fast path: Core queries (no ORM objects) straight to JSON, in the shape of LeadOut (a
# test compares the two). Statuses are read apart: a join changes the planner's choice for searches.
LIST_COLUMNS = (
    Lead.id, Lead.first_name, Lead.last_name, Lead.phone, Lead.email, Lead.company, Lead.source,
    Lead.status_id, Lead.owner_user_id, Lead.tags, Lead.reason, Lead.fields, Lead.created_at,
    Lead.updated_at, Lead.status_changed_at,
)  # fmt: skip


async def status_json(connection: AsyncConnection, statuses: StatusRepository) -> dict[int, dict[str, Any]]:
    query = statuses.query().with_only_columns(
        LeadStatus.id, LeadStatus.key, LeadStatus.name, LeadStatus.color
    )
    return {row.id: dict(row._mapping) for row in await connection.execute(query)}


def lead_row_json(row: Row[Any], statuses: dict[int, dict[str, Any]]) -> dict[str, Any]:
    item = dict(row._mapping)
    item["full_name"] = f"{item['first_name']} {item['last_name']}".strip()
    item["status"] = statuses[item.pop("status_id")]
    item["created"] = None
    return item


# Kanban -----------------------------------------------------------------------------------------
async def lock_column(db: AsyncSession, business_id: int, status_id: int) -> LeadStatus:
    """Serialise moves into one column (FOR NO KEY UPDATE: inserts of leads referencing it go on)."""
    status = await db.scalar(
        select(LeadStatus)
        .where(LeadStatus.id == status_id, LeadStatus.business_id == business_id)
        .with_for_update(key_share=True)
    )
    if status is None:
        raise UnknownStatus(f"status {status_id} does not exist")
    return status


async def _neighbours(
    db: AsyncSession, business_id: int, status_id: int, lead_id: int, position: int
) -> tuple[float | None, float | None]:
    """Ranks of the leads that will be just before and just after ``position`` in the column."""
    column = (
        select(Lead.rank)
        .where(Lead.business_id == business_id, Lead.status_id == status_id, Lead.id != lead_id)
        .order_by(Lead.rank, Lead.id)
    )
    if position == 0:
        after = await db.scalar(column.limit(1))
        return None, after
    rows = list(await db.scalars(column.offset(position - 1).limit(2)))
    before = rows[0] if rows else None
    if before is None:  # past the end: last place
        last = await db.scalar(column.order_by(None).order_by(Lead.rank.desc(), Lead.id.desc()).limit(1))
        return last, None
    return before, rows[1] if len(rows) > 1 else None


async def _renumber(db: AsyncSession, business_id: int, status_id: int) -> None:
    ordered = (
        select(
            Lead.id, (func.row_number().over(order_by=(Lead.rank, Lead.id)) * RENUMBER_STEP).label("new_rank")
        )
        .where(Lead.business_id == business_id, Lead.status_id == status_id)
        .subquery()
    )
    await db.execute(
        update(Lead)
        .where(Lead.id == ordered.c.id)
        .values(rank=ordered.c.new_rank)
        .execution_options(synchronize_session=False)
    )


async def move(writer: LeadWriter, lead: Lead, status_id: int, position: int) -> bool:
    """Put ``lead`` at ``position`` of column ``status_id`` (changing its status if needed).

    Moves into one column are serialised by a lock on the status row, so concurrent moves never
    compute the same rank; when two neighbours are too close the column is renumbered first.
    """
    db, business_id = writer.db, writer.business_id
    await lock_column(db, business_id, status_id)
    before, after = await _neighbours(db, business_id, status_id, lead.id, position)
    if before is not None and after is not None and after - before < MIN_RANK_GAP:
        await _renumber(db, business_id, status_id)
        before, after = await _neighbours(db, business_id, status_id, lead.id, position)
    if before is None and after is None:
        rank = 0.0
    elif before is None:
        assert after is not None
        rank = after - RENUMBER_STEP
    elif after is None:
        rank = before + RENUMBER_STEP
    else:
        rank = (before + after) / 2
    await db.refresh(lead, with_for_update={"key_share": True})  # after the column: one lock order
    return await writer.change_status(lead, status_id, rank=rank)


# Lists ------------------------------------------------------------------------------------------
SORT_COLUMNS = {"created_at": Lead.created_at, "updated_at": Lead.updated_at}


def encode_cursor(sort: SortKey, lead: Lead | Row[Any]) -> str:
    value = getattr(lead, sort.lstrip("-"))
    raw = json.dumps({"s": sort, "v": value.isoformat(), "id": lead.id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(sort: SortKey, cursor: str) -> tuple[datetime, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if data["s"] != sort:
            raise ValueError("sort changed")
        return datetime.fromisoformat(data["v"]), int(data["id"])
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError):
        raise field_error(
            "cursor", "not a cursor of this list (use next_cursor with the same sort)", location="query"
        ) from None


def keyset_page(query: Select[Lead], sort: SortKey, cursor: str | None, limit: int) -> Select[Lead]:
    column = SORT_COLUMNS[sort.lstrip("-")]
    descending = sort.startswith("-")
    if cursor is not None:
        value, lead_id = decode_cursor(sort, cursor)
        position = tuple_(column, Lead.id)
        after = position < tuple_(value, lead_id) if descending else position > tuple_(value, lead_id)
        query = query.where(after)
    order = (column.desc(), Lead.id.desc()) if descending else (column.asc(), Lead.id.asc())
    return query.order_by(*order).limit(limit + 1)


def lead_not_found() -> Exception:
    return not_found("lead")
