"""Sign-in, refresh-token rotation and sign-out. The route's session commits; this module only flushes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_api.auth.passwords import hash_password, needs_rehash, verify_password
from prosaas_api.auth.tokens import hash_token, issue_access_token, new_refresh_token
from prosaas_api.settings import ApiSettings
from prosaas_common.models import AuthSession, Business, RefreshToken, User, UserRole


class SignInFailed(Exception):
    """Wrong e-mail or password, or an inactive account: one answer for all, so none is revealed."""


class RefreshOutcome(StrEnum):
    ROTATED = "rotated"
    INVALID = "invalid"
    REUSED = "reused"  # an already used token: the session was revoked


@dataclass(frozen=True)
class IssuedTokens:
    user: User
    business: Business | None
    session_id: uuid.UUID
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    impersonating: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


async def _business_of(db: AsyncSession, user: User) -> Business | None:
    return await db.get(Business, user.business_id) if user.business_id is not None else None


async def _issue(
    db: AsyncSession, settings: ApiSettings, user: User, auth_session: AuthSession
) -> IssuedTokens:
    """New tokens for the session. A system admin impersonating a business acts as its owner."""
    raw, token_hash = new_refresh_token()
    refresh_expires = min(auth_session.expires_at, _now() + timedelta(days=settings.refresh_token_ttl_days))
    db.add(RefreshToken(session_id=auth_session.id, token_hash=token_hash, expires_at=refresh_expires))
    await db.flush()
    impersonating = auth_session.acting_business_id is not None and user.role == UserRole.SYSTEM_ADMIN
    if impersonating:
        business = await db.get(Business, auth_session.acting_business_id)
        role = UserRole.OWNER.value
    else:
        business, role = await _business_of(db, user), user.role
    access, access_expires = issue_access_token(
        settings.auth_secret.get_secret_value(),
        user_id=user.id,
        session_id=auth_session.id,
        role=role,
        business_id=business.id if business else None,
        impersonating=impersonating,
        ttl_s=settings.access_token_ttl,
    )
    return IssuedTokens(
        user, business, auth_session.id, access, access_expires, raw, refresh_expires, impersonating
    )


async def switch_acting_business(
    db: AsyncSession, settings: ApiSettings, session_id: uuid.UUID, business_id: int | None
) -> IssuedTokens:
    """Start (a business id) or end (None) impersonation for the session; returns its new tokens.

    The session's unused refresh tokens are dropped (not marked used, which would look like a copy):
    the caller gets a new one bound to the new acting business.
    """
    auth_session = await db.get(AuthSession, session_id, with_for_update=True)
    if auth_session is None or auth_session.revoked_at is not None:
        raise SignInFailed
    user = await db.get(User, auth_session.user_id)
    if user is None or not user.is_active:
        raise SignInFailed
    auth_session.acting_business_id = business_id
    await db.execute(
        delete(RefreshToken).where(RefreshToken.session_id == session_id, RefreshToken.used_at.is_(None))
    )
    return await _issue(db, settings, user, auth_session)


async def sign_in(
    db: AsyncSession,
    settings: ApiSettings,
    *,
    email: str,
    password: str,
    client: str,
    ip: str,
    user_agent: str,
) -> IssuedTokens:
    user = await db.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise SignInFailed
    business = await _business_of(db, user)
    if not user.is_active or (business is not None and not business.is_active):
        raise SignInFailed
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = _now()
    auth_session = AuthSession(
        id=uuid.uuid4(),
        user_id=user.id,
        client=client,
        ip=ip[:64],
        user_agent=user_agent[:300],
        expires_at=_now() + timedelta(days=settings.refresh_token_ttl_days),
    )
    db.add(auth_session)
    await db.flush()
    return await _issue(db, settings, user, auth_session)


async def rotate_refresh_token(
    db: AsyncSession, settings: ApiSettings, raw: str
) -> tuple[RefreshOutcome, IssuedTokens | None, uuid.UUID | None]:
    """Trade a refresh token for new tokens. A reused token revokes its session (flushed, not raised,
    so the caller's commit keeps the revocation)."""
    token = await db.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_token(raw)).with_for_update()
    )
    if token is None:
        return RefreshOutcome.INVALID, None, None
    auth_session = await db.get(AuthSession, token.session_id, with_for_update=True)
    if auth_session is None or auth_session.revoked_at is not None:
        return RefreshOutcome.INVALID, None, None
    now = _now()
    if token.used_at is not None:
        await revoke_session(db, auth_session, "refresh_reuse")
        return RefreshOutcome.REUSED, None, auth_session.id
    if token.expires_at <= now or auth_session.expires_at <= now:
        return RefreshOutcome.INVALID, None, None
    user = await db.get(User, auth_session.user_id)
    business = await _business_of(db, user) if user else None
    if user is None or not user.is_active or (business is not None and not business.is_active):
        await revoke_session(db, auth_session, "account_inactive")
        return RefreshOutcome.INVALID, None, auth_session.id
    token.used_at = now
    return RefreshOutcome.ROTATED, await _issue(db, settings, user, auth_session), auth_session.id


async def revoke_session(db: AsyncSession, auth_session: AuthSession, reason: str) -> None:
    if auth_session.revoked_at is None:
        auth_session.revoked_at = _now()
        auth_session.revoked_reason = reason
    await db.flush()


async def revoke_session_by_id(db: AsyncSession, session_id: uuid.UUID, reason: str) -> None:
    await db.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=_now(), revoked_reason=reason)
    )
