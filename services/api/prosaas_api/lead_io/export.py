"""GET /api/leads/export.csv: the leads matching the list's filter as a streamed CSV file.

Rows are read in id-keyset batches, each batch in its own short session (the request's session is
closed once the route returns, and a slow download must not hold a connection), so memory stays flat
whatever the number of leads. The stream is scoped to the caller's business by :class:`LeadRepository`.

This router must be included before any ``/api/leads/{lead_id}`` route, which would shadow it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prosaas_api import audit
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.leads.query import LeadRepository, lead_filter
from prosaas_api.tenancy import tenant_of
from prosaas_common.leads.filters import LeadFilter
from prosaas_common.models import Lead, LeadStatus, User
from prosaas_common.web import DbSession, resources_of

router = APIRouter(prefix="/api/leads", tags=["leads"])
Reader = Annotated[Principal, Depends(require(Permission.LEADS_READ))]

BATCH = 1000
HEADER = (
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
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def safe_cell(value: object) -> str:
    """A cell a spreadsheet will not run: text starting with = + - @ (or tab/CR) gets a leading ``'``.

    Plain numbers (an E.164 phone like ``+15550102030``, ``-3``) cannot call anything and stay as they are.
    """
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    if text.startswith(FORMULA_START) and not PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def csv_lines(rows: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue()


def export_row(row: Row[Lead, str, str | None]) -> list[object]:
    lead = row[0]
    return [
        lead.id,
        lead.first_name,
        lead.last_name,
        lead.phone,
        lead.email,
        lead.company,
        row[1],
        lead.source,
        row[2],
        ";".join(lead.tags or []),
        lead.reason,
        lead.created_at,
        lead.updated_at,
    ]


async def stream_leads(
    sessions: async_sessionmaker[AsyncSession], principal: Principal, lead_filter: LeadFilter
) -> AsyncIterator[str]:
    yield csv_lines([HEADER])
    after = 0
    while True:
        async with sessions() as db:
            statement = (
                LeadRepository(db, principal)
                .matching(lead_filter)
                .where(Lead.id > after)
                .join(LeadStatus, LeadStatus.id == Lead.status_id)
                .outerjoin(User, User.id == Lead.owner_user_id)
                .add_columns(LeadStatus.name, User.email)
                .order_by(Lead.id)
                .limit(BATCH)
            )
            rows = list((await db.execute(statement)).all())
        if not rows:
            return
        yield csv_lines(export_row(row) for row in rows)
        if len(rows) < BATCH:
            return
        after = rows[-1][0].id


@router.get(
    "/export.csv",
    operation_id="leads_export_csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "the matching leads as CSV"}},
)
async def export_leads(
    principal: Reader,
    request: Request,
    db: DbSession,
    filters: Annotated[LeadFilter, Depends(lead_filter)],
) -> StreamingResponse:
    """Same filters as the list; columns id … updated_at, tags joined with ``;``."""
    tenant_of(principal)  # 403 before the stream starts, not inside it
    await audit.record(db, principal, "leads.exported", "lead", None, {"filter": filters.to_json()})
    filename = f"leads-{datetime.now(UTC):%Y-%m-%d}.csv"
    return StreamingResponse(
        stream_leads(resources_of(request).sessions, principal, filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
