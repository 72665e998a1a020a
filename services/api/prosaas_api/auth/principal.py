"""Who is calling: the acting principal, read from a bearer token or the SPA's cookies.

Cookie-authenticated unsafe requests must carry the CSRF token (double submit: the ``X-CSRF-Token``
header equals the ``prosaas_csrf`` cookie); bearer requests need none. A session ended by logout or a
password change is refused at once through ``auth:revoked_session:{session_id}`` in Redis (kept for the
access-token lifetime), not only when its access token expires.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from redis.asyncio import Redis

from prosaas_api.audit import record_impersonated_request
from prosaas_api.auth.permissions import Permission, allows
from prosaas_api.auth.tokens import InvalidToken, read_access_token
from prosaas_api.settings import ApiSettings
from prosaas_common.logging import bind_context
from prosaas_common.models import UserRole
from prosaas_common.web import resources_of

ACCESS_COOKIE = "prosaas_access"
REFRESH_COOKIE = "prosaas_refresh"
CSRF_COOKIE = "prosaas_csrf"
CSRF_HEADER = "x-csrf-token"
REVOKED_SESSION_KEY = "auth:revoked_session:{}"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PERMISSION_ATTRIBUTE = "prosaas_permission"


@dataclass(frozen=True)
class Principal:
    user_id: int
    role: UserRole
    business_id: int | None
    session_id: uuid.UUID
    impersonating: bool
    via: Literal["bearer", "cookie"]


def api_settings(request: Request) -> ApiSettings:
    settings = resources_of(request).settings
    assert isinstance(settings, ApiSettings)
    return settings


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def check_csrf(request: Request) -> None:
    """Double submit: the header must equal the cookie (constant-time compare)."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
        raise HTTPException(status_code=403, detail="missing or wrong X-CSRF-Token header")


async def revoke_session_tokens(redis: Redis, session_id: uuid.UUID, ttl_s: int) -> None:
    """Refuse the session's unexpired access tokens from now on."""
    await redis.set(REVOKED_SESSION_KEY.format(session_id), "1", ex=ttl_s)


async def current_principal(request: Request) -> Principal:
    settings = api_settings(request)
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    via: Literal["bearer", "cookie"]
    if scheme.lower() == "bearer" and value.strip():
        token, via = value.strip(), "bearer"
    elif request.cookies.get(ACCESS_COOKIE):
        token, via = request.cookies[ACCESS_COOKIE], "cookie"
    else:
        raise unauthorized("sign in first")
    try:
        claims = read_access_token(settings.auth_secret.get_secret_value(), token)
    except InvalidToken:
        raise unauthorized("the access token is invalid or expired") from None
    if await resources_of(request).redis.exists(REVOKED_SESSION_KEY.format(claims.session_id)):
        raise unauthorized("this session has ended")
    if via == "cookie" and request.method not in SAFE_METHODS:
        check_csrf(request)
    bind_context(user_id=claims.user_id, business_id=claims.business_id)
    principal = Principal(
        user_id=claims.user_id,
        role=UserRole(claims.role),
        business_id=claims.business_id,
        session_id=claims.session_id,
        impersonating=claims.impersonating,
        via=via,
    )
    if principal.impersonating and request.method not in SAFE_METHODS:
        await record_impersonated_request(
            resources_of(request).sessions, principal, request.method, request.url.path
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(permission: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency: the principal, if the permission matrix grants ``permission`` to its role; else 403."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not allows(principal.role, permission):
            raise HTTPException(status_code=403, detail=f"your role may not {permission.value}")
        return principal

    setattr(check, PERMISSION_ATTRIBUTE, permission)  # read back by route_permission()
    return check


def route_permission(route: APIRoute) -> Permission | None:
    """The permission a route requires through :func:`require` (None for public routes)."""
    pending: list[Dependant] = [route.dependant]
    while pending:
        dependant = pending.pop()
        found = getattr(dependant.call, PERMISSION_ATTRIBUTE, None)
        if isinstance(found, Permission):
            return found
        pending.extend(dependant.dependencies)
    return None
