"""Sign-in throttling in Redis: failures counted per account and per client IP in a fixed window.

Keys: ``auth:login_failures:account:{sha256(email)}`` and ``auth:login_failures:ip:{ip}``, each with the
window as TTL. Past the limit a sign-in is refused with 429 and ``Retry-After`` = the key's remaining
TTL, before the password is even checked. A successful sign-in clears the account's counter.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

ACCOUNT_KEY = "auth:login_failures:account:{}"
IP_KEY = "auth:login_failures:ip:{}"

# INCR then set the TTL only on the first failure of a window (atomic).
_RECORD = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class Throttled(Exception):
    def __init__(self, retry_after_s: int, scope: str) -> None:
        super().__init__(f"too many failed sign-ins for this {scope}")
        self.retry_after_s = retry_after_s
        self.scope = scope  # "account" or "ip"


def _account_key(email: str) -> str:
    return ACCOUNT_KEY.format(hashlib.sha256(email.strip().lower().encode()).hexdigest())


class LoginThrottle:
    def __init__(self, redis: Redis, *, per_account: int, per_ip: int, window_s: int) -> None:
        self._redis = redis
        self._per_account = per_account
        self._per_ip = per_ip
        self._window_s = window_s
        self._record = redis.register_script(_RECORD)

    async def check(self, email: str, ip: str) -> None:
        """Raise :class:`Throttled` when the account or the IP used up its failures."""
        for key, limit, scope in (
            (_account_key(email), self._per_account, "account"),
            (IP_KEY.format(ip), self._per_ip, "ip"),
        ):
            count = await self._redis.get(key)
            if count is not None and int(count) >= limit:
                ttl = await self._redis.ttl(key)
                raise Throttled(retry_after_s=max(1, int(ttl)), scope=scope)

    async def failed(self, email: str, ip: str) -> None:
        await self._record(keys=[_account_key(email)], args=[self._window_s])
        await self._record(keys=[IP_KEY.format(ip)], args=[self._window_s])

    async def succeeded(self, email: str) -> None:
        await self._redis.delete(_account_key(email))
