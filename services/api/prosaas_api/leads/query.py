"""The lead filter as query parameters (list, export) and the tenant-scoped lead repository."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import Field
from sqlalchemy import Select

from prosaas_api.ids import MAX_ROW_ID
from prosaas_api.tenancy import TenantRepository
from prosaas_common.leads.filters import LeadFilter
from prosaas_common.models import Lead


class LeadRepository(TenantRepository[Lead]):
    model = Lead
    label = "lead"

    def matching(self, lead_filter: LeadFilter) -> Select[Lead]:
        return self.query().where(*lead_filter.conditions())


async def lead_filter(
    status_id: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ROW_ID)]] | None, Query(description="one or more status ids")
    ] = None,
    source: Annotated[str | None, Query(max_length=50)] = None,
    owner_user_id: Annotated[int | None, Query(gt=0, le=MAX_ROW_ID)] = None,
    unassigned: Annotated[bool, Query(description="only leads without an owner")] = False,
    tag: Annotated[list[str] | None, Query(description="leads carrying all of these tags")] = None,
    created_from: Annotated[datetime | None, Query(description="created at or after (ISO 8601)")] = None,
    created_to: Annotated[datetime | None, Query(description="created before (ISO 8601)")] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="words in name, phone, e-mail or company")
    ] = None,
) -> LeadFilter:
    """FastAPI dependency: the filter of GET /api/leads (and the export) from its query string (async:
    a plain function would run in the thread pool on every request)."""
    return LeadFilter(
        status_ids=tuple(status_id or ()),
        source=source,
        owner_user_id=owner_user_id,
        unassigned=unassigned,
        tags=tuple(t.strip().lower() for t in tag or () if t.strip()),
        created_from=created_from,
        created_to=created_to,
        q=q,
    )
