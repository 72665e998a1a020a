"""The lead filter as query parameters (list, export) and the tenant-scoped lead repository."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import Field
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_api.auth.principal import CurrentPrincipal, Principal
from prosaas_api.errors import field_error
from prosaas_api.ids import MAX_ROW_ID
from prosaas_api.tenancy import TenantRepository, tenant_of
from prosaas_common.leads.filters import LeadFilter, is_phone_query
from prosaas_common.models import Business, Lead, LeadStatus
from prosaas_common.web import DbSession


class LeadRepository(TenantRepository[Lead]):
    model = Lead
    label = "lead"

    def matching(self, lead_filter: LeadFilter) -> Select[Lead]:
        return self.query().where(*lead_filter.conditions())


class StatusRepository(TenantRepository[LeadStatus]):
    model = LeadStatus
    label = "status"

    async def check(self, field: str, status_id: int | None) -> None:
        """422 on ``field`` unless ``status_id`` is null or a status of this business."""
        if status_id is None:
            return
        if await self.db.scalar(self.query().where(LeadStatus.id == status_id)) is None:
            raise field_error(field, "no such status in this business")


async def business_region(db: AsyncSession, principal: Principal) -> str:
    """The region national phone numbers are read in (the acting business's)."""
    region = await db.scalar(select(Business.default_region).where(Business.id == tenant_of(principal)))
    return region or "US"


async def lead_filter(
    principal: CurrentPrincipal,
    db: DbSession,
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
        str | None,
        Query(max_length=200, description="words in name, phone, e-mail or company; or a phone number"),
    ] = None,
) -> LeadFilter:
    """FastAPI dependency: the filter of GET /api/leads (and the export) from its query string (async:
    a plain function would run in the thread pool on every request)."""
    region = await business_region(db, principal) if q and is_phone_query(q) else None
    return LeadFilter(
        status_ids=tuple(status_id or ()),
        source=source,
        owner_user_id=owner_user_id,
        unassigned=unassigned,
        tags=tuple(t.strip().lower() for t in tag or () if t.strip()),
        created_from=created_from,
        created_to=created_to,
        q=q,
        region=region,
    )
