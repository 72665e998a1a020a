"""Access tokens (short-lived JWTs) and refresh tokens (random, stored only as SHA-256 hashes)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
ISSUER = "prosaas-api"


@dataclass(frozen=True)
class AccessClaims:
    """Who the bearer is: the user, their session, and the business they act for (if any)."""

    user_id: int
    session_id: uuid.UUID
    role: str
    business_id: int | None
    impersonating: bool
    expires_at: datetime


class InvalidToken(Exception):
    pass


def issue_access_token(
    secret: str,
    *,
    user_id: int,
    session_id: uuid.UUID,
    role: str,
    business_id: int | None,
    impersonating: bool,
    ttl_s: int,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    issued = now or datetime.now(UTC)
    expires = issued + timedelta(seconds=ttl_s)
    payload = {
        "iss": ISSUER,
        "sub": str(user_id),
        "sid": str(session_id),
        "role": role,
        "bid": business_id,
        "imp": impersonating,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), expires


def read_access_token(secret: str, token: str) -> AccessClaims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "sid", "iss"]},
        )
        business = payload.get("bid")
        return AccessClaims(
            user_id=int(payload["sub"]),
            session_id=uuid.UUID(payload["sid"]),
            role=str(payload["role"]),
            business_id=int(business) if business is not None else None,
            impersonating=bool(payload.get("imp", False)),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
    except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from None


def new_refresh_token() -> tuple[str, str]:
    """A fresh refresh token and the hash to store (the token itself is never stored)."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_token(raw)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)
