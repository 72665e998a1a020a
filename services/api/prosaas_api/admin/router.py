"""/api/admin: a system admin acting as a business (impersonation) and back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response

from prosaas_api import audit
from prosaas_api.auth import service
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import CurrentPrincipal, Principal, api_settings, require
from prosaas_api.auth.router import respond_with_tokens
from prosaas_api.auth.schemas import ApiTokens, BrowserSession
from prosaas_api.settings import ApiSettings
from prosaas_common.logging import get_logger
from prosaas_common.models import Business
from prosaas_common.web import DbSession

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
    business_id: int, principal: PlatformAdmin, response: Response, db: DbSession, settings: Settings
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
