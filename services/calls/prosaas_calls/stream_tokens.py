"""One-time tokens that tie a media stream to the call whose TwiML started it.

``incoming_call`` puts a random token in the TwiML ``<Parameter>``s and keeps only its SHA-256 in Redis
(``calls:stream_token:{call_sid}``, 2 minutes). The media WebSocket accepts a stream only if its ``start``
message carries that call sid and token; redeeming deletes it (``GETDEL``), so a token works once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from redis.asyncio import Redis

TOKEN_TTL_S = 120


def token_key(call_sid: str) -> str:
    return f"calls:stream_token:{call_sid}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue(redis: Redis, call_sid: str) -> str:
    """A fresh token for ``call_sid`` (a retried webhook replaces the previous one)."""
    token = secrets.token_urlsafe(24)
    await redis.set(token_key(call_sid), _digest(token), ex=TOKEN_TTL_S)
    return token


async def redeem(redis: Redis, call_sid: str, token: str) -> bool:
    """True once for the token issued for ``call_sid`` (within its TTL), False otherwise."""
    stored = await redis.getdel(token_key(call_sid))
    if stored is None:
        return False
    expected = stored.decode() if isinstance(stored, bytes) else str(stored)
    return hmac.compare_digest(expected, _digest(token))
