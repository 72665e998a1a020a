"""/api/admin: businesses as platform staff manage them, and impersonation (acting as one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import func, select

from prosaas_api import audit
from prosaas_api.admin import businesses
from prosaas_api.admin.schemas import AdminBusinessOut, AdminBusinessPage, BusinessCreate
from prosaas_api.auth import service
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import (
    CurrentPrincipal,
    Principal,
    api_settings,
    require,
    revoke_session_tokens,
)
from prosaas_api.auth.router import respond_with_tokens
from prosaas_api.auth.schemas import ApiTokens, BrowserSession
from prosaas_api.business.router import apply_update
from prosaas_api.business.schemas import BusinessUpdate
from prosaas_api.ids import MAX_ROW_ID, RowId
from prosaas_api.settings import ApiSettings
from prosaas_common.db import after_commit
from prosaas_common.jobs import Queue, deliver_email_after_commit
from prosaas_common.logging import get_logger
from prosaas_common.models import Business
from prosaas_common.web import DbSession, resources_of

router = APIRouter(prefix="/api/admin", tags=["admin"])
log = get_logger("prosaas.api.admin")
Settings = Annotated[ApiSettings, Depends(api_settings)]
PlatformAdmin = Annotated[Principal, Depends(require(Permission.PLATFORM_ADMIN))]


def _client(principal: Principal) -> str:
    """Answer the way the caller signed in: cookies for the SPA, tokens in the body for API clients."""
    return "browser" if principal.via == "cookie" else "api"


@router.post(
    "/businesses/{business_id}/impersonate",
    operation_id="admin_impersonate_business",
    response_model=BrowserSession | ApiTokens,
    responses={404: {"description": "no active business with that id"}},
)
async def impersonate(
    business_id: RowId, principal: PlatformAdmin, response: Response, db: DbSession, settings: Settings
) -> object:
    business = await db.get(Business, business_id)
    if business is None or not business.is_active:
        raise HTTPException(status_code=404, detail="business not found")
    tokens = await service.switch_acting_business(db, settings, principal.session_id, business.id)
    await audit.record(db, principal, "impersonation.started", "business", business.id)
    log.info("auth.impersonation_started", user_id=principal.user_id, business_id=business.id)
    return respond_with_tokens(tokens, _client(principal), settings, response)


@router.post(
    "/impersonate/exit",
    operation_id="admin_impersonate_exit",
    response_model=BrowserSession | ApiTokens,
    responses={409: {"description": "the session is not impersonating"}},
)
async def exit_impersonation(
    principal: CurrentPrincipal, response: Response, db: DbSession, settings: Settings
) -> object:
    if not principal.impersonating:
        raise HTTPException(status_code=409, detail="this session is not impersonating a business")
    tokens = await service.switch_acting_business(db, settings, principal.session_id, None)
    await audit.record(db, principal, "impersonation.ended", "business", principal.business_id)
    log.info("auth.impersonation_ended", user_id=principal.user_id, business_id=principal.business_id)
    return respond_with_tokens(tokens, _client(principal), settings, response)


async def _business(db: DbSession, business_id: RowId, *, for_update: bool = False) -> Business:
    business = await db.get(Business, business_id, with_for_update=for_update)
    if business is None:
        raise HTTPException(status_code=404, detail="business not found")
    return business


@router.post(
    "/businesses",
    operation_id="admin_create_business",
    status_code=201,
    response_model=AdminBusinessOut,
    responses={409: {"description": "the owner e-mail or a phone number is already taken"}},
)
async def create_business(
    body: BusinessCreate, principal: PlatformAdmin, request: Request, db: DbSession, settings: Settings
) -> AdminBusinessOut:
    """Business, default lead statuses, phone numbers and owner in one transaction; the owner gets an
    e-mail to choose a password (no password is ever set or shown here)."""
    business, invitation = await businesses.create(db, settings, principal, body)
    if invitation is not None:
        deliver_email_after_commit(db, resources_of(request).job_pool, invitation, queue=Queue.HIGH)
    log.info("admin.business_created", business_id=business.id)
    return await businesses.out(db, business)


@router.get("/businesses", operation_id="admin_list_businesses", response_model=AdminBusinessPage)
async def list_businesses(
    principal: PlatformAdmin,
    db: DbSession,
    q: Annotated[str | None, Query(max_length=200, description="part of the name")] = None,
    after: Annotated[int | None, Query(gt=0, le=MAX_ROW_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AdminBusinessPage:
    query = select(Business).order_by(Business.id).limit(limit + 1)
    if q:
        query = query.where(func.lower(Business.name).contains(q.lower(), autoescape=True))
    if after is not None:
        query = query.where(Business.id > after)
    rows = list((await db.scalars(query)).all())
    page = rows[:limit]
    return AdminBusinessPage(
        items=[await businesses.out(db, b) for b in page],
        next_after=page[-1].id if len(rows) > limit else None,
    )


@router.get("/businesses/{business_id}", operation_id="admin_get_business", response_model=AdminBusinessOut)
async def get_business(business_id: RowId, principal: PlatformAdmin, db: DbSession) -> AdminBusinessOut:
    return await businesses.out(db, await _business(db, business_id))


@router.patch(
    "/businesses/{business_id}", operation_id="admin_update_business", response_model=AdminBusinessOut
)
async def update_business(
    business_id: RowId, body: BusinessUpdate, principal: PlatformAdmin, db: DbSession
) -> AdminBusinessOut:
    business = await _business(db, business_id, for_update=True)
    await apply_update(db, principal, business, body)
    return await businesses.out(db, business)


async def _set_active(
    business_id: RowId,
    active: bool,
    principal: Principal,
    request: Request,
    db: DbSession,
    settings: ApiSettings,
) -> AdminBusinessOut:
    business = await _business(db, business_id, for_update=True)
    ended = await businesses.set_active(db, principal, business, active)
    redis = resources_of(request).redis

    async def refuse_their_tokens() -> None:
        for session_id in ended:
            await revoke_session_tokens(redis, session_id, settings.access_token_ttl)

    after_commit(db, refuse_their_tokens)
    return await businesses.out(db, business)


@router.post(
    "/businesses/{business_id}/deactivate",
    operation_id="admin_deactivate_business",
    response_model=AdminBusinessOut,
)
async def deactivate_business(
    business_id: RowId, principal: PlatformAdmin, request: Request, db: DbSession, settings: Settings
) -> AdminBusinessOut:
    """Its users can no longer sign in, and their open sessions end at once."""
    return await _set_active(business_id, False, principal, request, db, settings)


@router.post(
    "/businesses/{business_id}/activate",
    operation_id="admin_activate_business",
    response_model=AdminBusinessOut,
)
async def activate_business(
    business_id: RowId, principal: PlatformAdmin, request: Request, db: DbSession, settings: Settings
) -> AdminBusinessOut:
    return await _set_active(business_id, True, principal, request, db, settings)
