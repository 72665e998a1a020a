"""/api/auth: sign in, refresh, sign out, who am I."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from prosaas_api.auth import password_reset, service
from prosaas_api.auth.principal import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    REFRESH_COOKIE,
    CurrentPrincipal,
    api_settings,
    check_csrf,
    revoke_session_tokens,
    unauthorized,
)
from prosaas_api.auth.schemas import (
    Accepted,
    ApiTokens,
    BrowserSession,
    BusinessSummary,
    ForgotRequest,
    LoginRequest,
    Me,
    PasswordChange,
    RefreshRequest,
    ResetRequest,
)
from prosaas_api.auth.throttle import LoginThrottle, Throttled
from prosaas_api.auth.tokens import new_csrf_token
from prosaas_api.settings import ApiSettings
from prosaas_common.db import after_commit
from prosaas_common.jobs import Queue, deliver_email_after_commit
from prosaas_common.logging import get_logger
from prosaas_common.models import Business, User, UserRole
from prosaas_common.web import DbSession, resources_of

router = APIRouter(prefix="/api/auth", tags=["auth"])
log = get_logger("prosaas.api.auth")
Settings = Annotated[ApiSettings, Depends(api_settings)]
REFRESH_COOKIE_PATH = "/api/auth"


def me_of(user: User, business: Business | None, impersonating: bool = False) -> Me:
    return Me(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=user.role,
        business=BusinessSummary(id=business.id, name=business.name) if business else None,
        impersonating=impersonating,
        acting_role=UserRole.OWNER.value if impersonating else user.role,
    )


def login_throttle(request: Request, settings: ApiSettings) -> LoginThrottle:
    return LoginThrottle(
        resources_of(request).redis,
        per_account=settings.login_max_failures_per_account,
        per_ip=settings.login_max_failures_per_ip,
        window_s=settings.login_failure_window,
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def respond_with_tokens(
    tokens: service.IssuedTokens, client: str, settings: ApiSettings, response: Response
) -> object:
    """The body (and for browsers the cookies) that hand new tokens to the client."""
    user = me_of(tokens.user, tokens.business, tokens.impersonating)
    if client == "api":
        return ApiTokens(
            user=user,
            access_token=tokens.access_token,
            expires_in=settings.access_token_ttl,
            refresh_token=tokens.refresh_token,
            refresh_expires_at=tokens.refresh_expires_at,
        )
    csrf = new_csrf_token()
    secure = settings.secure_cookies
    refresh_age = int((tokens.refresh_expires_at - datetime.now(UTC)).total_seconds())
    response.set_cookie(
        ACCESS_COOKIE, tokens.access_token, max_age=settings.access_token_ttl, httponly=True,
        secure=secure, samesite="lax", path="/",
    )  # fmt: skip
    response.set_cookie(
        REFRESH_COOKIE, tokens.refresh_token, max_age=refresh_age, httponly=True, secure=secure,
        samesite="strict", path=REFRESH_COOKIE_PATH,
    )  # fmt: skip
    response.set_cookie(CSRF_COOKIE, csrf, max_age=refresh_age, httponly=False, secure=secure, samesite="lax")
    return BrowserSession(user=user, csrf_token=csrf, access_expires_at=tokens.access_expires_at)


def _clear_cookies(response: Response) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/")
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_COOKIE_PATH)
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.post(
    "/login",
    operation_id="auth_login",
    response_model=BrowserSession | ApiTokens,
    responses={401: {"description": "wrong e-mail or password"}, 429: {"description": "too many failures"}},
)
async def login(
    body: LoginRequest, request: Request, response: Response, db: DbSession, settings: Settings
) -> object:
    throttle = login_throttle(request, settings)
    ip = client_ip(request)
    try:
        await throttle.check(body.email, ip)
    except Throttled as exc:
        log.warning("auth.login_throttled", scope=exc.scope, retry_after_s=exc.retry_after_s)
        raise HTTPException(
            status_code=429,
            detail="too many failed sign-ins; try again later",
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None
    try:
        tokens = await service.sign_in(
            db,
            settings,
            email=body.email,
            password=body.password,
            client=body.client,
            ip=ip,
            user_agent=request.headers.get("user-agent", ""),
        )
    except service.SignInFailed:
        await throttle.failed(body.email, ip)
        log.info("auth.login_failed")
        raise unauthorized("wrong e-mail or password") from None
    await throttle.succeeded(body.email)
    log.info("auth.login", user_id=tokens.user.id, client=body.client)
    return respond_with_tokens(tokens, body.client, settings, response)


@router.post(
    "/refresh",
    operation_id="auth_refresh",
    response_model=BrowserSession | ApiTokens,
    responses={401: {"description": "refresh token invalid, expired, revoked or reused"}},
)
async def refresh(
    request: Request,
    response: Response,
    db: DbSession,
    settings: Settings,
    body: Annotated[RefreshRequest | None, Body()] = None,
) -> object:
    if body is not None and body.refresh_token:
        raw, client = body.refresh_token, "api"
    elif request.cookies.get(REFRESH_COOKIE):
        check_csrf(request)
        raw, client = request.cookies[REFRESH_COOKIE], "browser"
    else:
        raise unauthorized("no refresh token")
    outcome, tokens, session_id = await service.rotate_refresh_token(db, settings, raw)
    if outcome is service.RefreshOutcome.ROTATED and tokens is not None:
        return respond_with_tokens(tokens, client, settings, response)
    if outcome is service.RefreshOutcome.REUSED and session_id is not None:
        # Returned, not raised: the boundary must commit the revocation.
        await revoke_session_tokens(resources_of(request).redis, session_id, settings.access_token_ttl)
        log.warning("auth.refresh_reuse_detected", session_id=str(session_id))
    refused = JSONResponse(
        {"detail": "the refresh token is invalid, expired or revoked; sign in again"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )
    if client == "browser":
        _clear_cookies(refused)
    return refused


@router.post("/logout", operation_id="auth_logout", status_code=204)
async def logout(
    principal: CurrentPrincipal, request: Request, db: DbSession, settings: Settings
) -> Response:
    await service.revoke_session_by_id(db, principal.session_id, "logout")
    await revoke_session_tokens(resources_of(request).redis, principal.session_id, settings.access_token_ttl)
    log.info("auth.logout", user_id=principal.user_id)
    response = Response(status_code=204)
    _clear_cookies(response)
    return response


@router.get("/me", operation_id="auth_me", response_model=Me)
async def me(principal: CurrentPrincipal, db: DbSession) -> Me:
    user = await db.get(User, principal.user_id)
    if user is None or not user.is_active:
        raise unauthorized("this account no longer exists or is inactive")
    business = await db.get(Business, principal.business_id) if principal.business_id else None
    return me_of(user, business, principal.impersonating)


@router.post("/forgot", operation_id="auth_forgot", status_code=202, response_model=Accepted)
async def forgot(body: ForgotRequest, request: Request, db: DbSession, settings: Settings) -> Accepted:
    """Always 202: whether the e-mail has an account is not revealed. The link is e-mailed by a job."""
    email_id = await password_reset.request_reset(db, settings, body.email)
    if email_id is not None:
        deliver_email_after_commit(db, resources_of(request).job_pool, email_id, queue=Queue.HIGH)
    return Accepted(detail="if an account uses this e-mail, a reset link is on its way")


@router.post(
    "/reset",
    operation_id="auth_reset",
    status_code=204,
    responses={400: {"description": "the link is invalid, used or expired"}},
)
async def reset(body: ResetRequest, request: Request, db: DbSession, settings: Settings) -> Response:
    try:
        changed = await password_reset.reset_password(db, body.token, body.new_password)
    except password_reset.InvalidResetToken:
        raise HTTPException(status_code=400, detail="the reset link is invalid, used or expired") from None
    after_commit(db, lambda: _sessions_ended(request, settings, changed))
    log.info("auth.password_reset", sessions_ended=len(changed.ended_sessions))
    return Response(status_code=204)


async def _sessions_ended(
    request: Request, settings: ApiSettings, changed: password_reset.PasswordChanged
) -> None:
    """After the commit: refuse the ended sessions' access tokens at once, clear the sign-in throttle."""
    redis = resources_of(request).redis
    for session_id in changed.ended_sessions:
        await revoke_session_tokens(redis, session_id, settings.access_token_ttl)
    await login_throttle(request, settings).succeeded(changed.email)


@router.post(
    "/password",
    operation_id="auth_change_password",
    status_code=204,
    responses={400: {"description": "the current password is wrong"}},
)
async def change_password(
    body: PasswordChange, principal: CurrentPrincipal, request: Request, db: DbSession, settings: Settings
) -> Response:
    """Change the signed-in user's password; every other session of the account ends."""
    try:
        changed = await password_reset.change_password(
            db, principal.user_id, body.current_password, body.new_password, principal.session_id
        )
    except password_reset.WrongPassword:
        raise HTTPException(status_code=400, detail="the current password is wrong") from None
    after_commit(db, lambda: _sessions_ended(request, settings, changed))
    log.info("auth.password_changed", user_id=principal.user_id, sessions_ended=len(changed.ended_sessions))
    return Response(status_code=204)
