"""Password changes. Forgotten passwords: a single-use link valid for 60 minutes, e-mailed through the
outbox; a signed-in user changes theirs with the current one.

Whether an e-mail belongs to an account is never revealed: the caller gets the same answer either way.
The link carries the token in the URL fragment (not sent to servers or written to access logs); only its
SHA-256 hash is stored. A reset ends every session of the account.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_api.auth.passwords import hash_password, verify_password
from prosaas_api.auth.tokens import hash_token, new_refresh_token
from prosaas_api.settings import ApiSettings
from prosaas_common.email_templates import add_templated_email
from prosaas_common.models import AuthSession, Business, PasswordResetToken, User

RESET_LINK_TTL = timedelta(minutes=60)
INVITATION_TTL = timedelta(days=7)
# At most this many reset e-mails per account per hour (no mail-bombing through the form).
MAX_RESETS_PER_HOUR = 3


class InvalidResetToken(Exception):
    pass


class WrongPassword(Exception):
    pass


@dataclass(frozen=True)
class PasswordChanged:
    email: str
    ended_sessions: list[uuid.UUID]


def _now() -> datetime:
    return datetime.now(UTC)


async def request_reset(db: AsyncSession, settings: ApiSettings, email: str) -> int | None:
    """Create a reset link and its outbox e-mail for an active account; the e-mail's id, or None."""
    user = await db.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None or not user.is_active:
        return None
    if user.business_id is not None:
        business = await db.get(Business, user.business_id)
        if business is None or not business.is_active:
            return None
    return await issue_password_link(
        db,
        settings,
        user,
        kind="password-reset",
        ttl=RESET_LINK_TTL,
        template="password_reset",
        context={"valid_minutes": int(RESET_LINK_TTL.total_seconds() // 60)},
    )


async def issue_password_link(
    db: AsyncSession,
    settings: ApiSettings,
    user: User,
    *,
    kind: str,
    ttl: timedelta,
    template: str,
    context: Mapping[str, object],
) -> int | None:
    """Store a single-use set-password token and its outbox e-mail (e-mail ``template`` with ``context``
    and the ``link``, From the user's business's sender name); the e-mail's id.

    Used for resets and for invitations (an invited owner sets a first password the same way).
    At most :data:`MAX_RESETS_PER_HOUR` per account per hour; beyond that nothing is sent.
    """
    recent = await db.scalar(
        select(func.count())
        .select_from(PasswordResetToken)
        .where(
            PasswordResetToken.user_id == user.id, PasswordResetToken.created_at > _now() - timedelta(hours=1)
        )
    )
    if (recent or 0) >= MAX_RESETS_PER_HOUR:
        return None
    raw, token_hash = new_refresh_token()
    token = PasswordResetToken(user_id=user.id, token_hash=token_hash, expires_at=_now() + ttl)
    db.add(token)
    await db.flush()
    link = f"{settings.app_url.rstrip('/')}/reset-password#token={raw}"
    return await add_templated_email(
        db,
        business_id=user.business_id,
        to_address=user.email,
        dedup_key=f"{kind}:{token.id}",
        template=template,
        context={**context, "link": link},
    )


async def end_sessions(
    db: AsyncSession, user_id: int, reason: str, keep: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Revoke the user's open sessions (all, or all but ``keep``); returns the ended ids."""
    statement = (
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=_now(), revoked_reason=reason)
        .returning(AuthSession.id)
    )
    if keep is not None:
        statement = statement.where(AuthSession.id != keep)
    return list((await db.execute(statement)).scalars())


async def change_password(
    db: AsyncSession, user_id: int, current_password: str, new_password: str, keep_session: uuid.UUID
) -> PasswordChanged:
    """A signed-in user's change: needs the current password; ends every other session."""
    user = await db.get(User, user_id)
    if user is None or not user.is_active or not verify_password(user.password_hash, current_password):
        raise WrongPassword
    user.password_hash = hash_password(new_password)
    ended = await end_sessions(db, user.id, "password_change", keep=keep_session)
    return PasswordChanged(email=user.email, ended_sessions=ended)


async def reset_password(db: AsyncSession, raw_token: str, new_password: str) -> PasswordChanged:
    """Set the new password, spend the link (and any other open link), end every session."""
    now = _now()
    token = await db.scalar(
        select(PasswordResetToken)
        .where(PasswordResetToken.token_hash == hash_token(raw_token))
        .with_for_update()
    )
    if token is None or token.used_at is not None or token.expires_at <= now:
        raise InvalidResetToken
    user = await db.get(User, token.user_id)
    if user is None or not user.is_active:
        raise InvalidResetToken
    user.password_hash = hash_password(new_password)
    await db.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )
    ended = await end_sessions(db, user.id, "password_reset")
    return PasswordChanged(email=user.email, ended_sessions=ended)


async def send_invitation(
    db: AsyncSession, settings: ApiSettings, user: User, business_name: str
) -> int | None:
    """E-mail a new user a link (7 days) to choose their first password; the outbox e-mail's id."""
    return await issue_password_link(
        db,
        settings,
        user,
        kind="invitation",
        ttl=INVITATION_TTL,
        template="invitation",
        context={"business_name": business_name, "role": user.role, "valid_days": INVITATION_TTL.days},
    )
