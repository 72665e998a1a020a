"""/api/business/current: the business the principal acts for."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_api import audit
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.business.schemas import AuditEntry, AuditPage, BusinessOut, BusinessUpdate
from prosaas_api.ids import MAX_ROW_ID
from prosaas_api.tenancy import TenantRepository, not_found, tenant_of
from prosaas_common.models import AuditEvent, Business
from prosaas_common.web import DbSession

router = APIRouter(prefix="/api/business", tags=["business"])
Reader = Annotated[Principal, Depends(require(Permission.BUSINESS_READ))]
Manager = Annotated[Principal, Depends(require(Permission.BUSINESS_MANAGE))]


def business_out(business: Business) -> BusinessOut:
    return BusinessOut(
        id=business.id,
        name=business.name,
        timezone=business.timezone,
        locale=business.locale,
        default_region=business.default_region,
        is_active=business.is_active,
    )


async def apply_update(
    db: AsyncSession, principal: Principal, business: Business, body: BusinessUpdate
) -> None:
    """Name, timezone, locale as given (by its staff or platform staff), audited with before/after."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    before = {field: getattr(business, field) for field in changes}
    for field, value in changes.items():
        setattr(business, field, value)
    if changes:
        await audit.record(
            db, principal, "business.updated", "business", business.id, {"before": before, "after": changes}
        )


async def current_business(db: DbSession, principal: Principal, *, for_update: bool = False) -> Business:
    business = await db.get(Business, tenant_of(principal), with_for_update=for_update)
    if business is None:
        raise not_found("business")
    return business


@router.get("/current", operation_id="business_get_current", response_model=BusinessOut)
async def get_current(principal: Reader, db: DbSession) -> BusinessOut:
    return business_out(await current_business(db, principal))


@router.patch("/current", operation_id="business_update_current", response_model=BusinessOut)
async def update_current(body: BusinessUpdate, principal: Manager, db: DbSession) -> BusinessOut:
    business = await current_business(db, principal, for_update=True)
    await apply_update(db, principal, business, body)
    return business_out(business)


class AuditRepository(TenantRepository[AuditEvent]):
    model = AuditEvent
    label = "audit event"


@router.get("/current/audit", operation_id="business_list_audit", response_model=AuditPage)
async def list_audit(
    principal: Manager,
    db: DbSession,
    before: Annotated[
        int | None, Query(gt=0, le=MAX_ROW_ID, description="only events older than this id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuditPage:
    """Who changed what in this business, newest first (keyset pagination on the event id)."""
    events = AuditRepository(db, principal)
    page, next_before = await events.newest_first(events.query(), before, limit)
    return AuditPage(
        items=[AuditEntry.model_validate(row, from_attributes=True) for row in page], next_before=next_before
    )
