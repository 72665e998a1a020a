"""Per-business outbound call concurrency: a semaphore in Redis shared by the worker and the calls service.

The worker takes a slot before it asks Twilio to place an outbound call (single calls and bulk runs alike)
and the calls service gives it back when Twilio reports the call's terminal status (``call_status``); a
call Twilio refused gives its slot back at once. A slot is named by the ``calls`` row id (known before
Twilio's call sid exists).

``calls:outbound:business:{business_id}`` is a sorted set: member the call row id, score the slot's expiry
(epoch ms by Redis ``TIME``). Every operation first drops expired members, so a slot whose terminal
callback never came (a lost webhook, a deleted row) frees itself after ``ttl`` — longer than any call
may last — without a sweeper; the key expires with its last slot. Each operation is one Lua script, so
concurrent acquires never pass the limit.
"""

from __future__ import annotations

from redis.asyncio import Redis

from prosaas_common.logging import get_logger

KEY_PREFIX = "calls:outbound:business:"
# Longer than the longest call (max_call_length_s ≤ 3600) plus ringing and queueing at Twilio.
DEFAULT_TTL_S = 7200.0

log = get_logger("prosaas.outbound_slots")

_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function expire_with_last(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]
  if last then redis.call('PEXPIREAT', key, last) end
end
"""

# KEYS: business set. ARGV: member, limit, ttl ms. Returns {1 taken | 2 already held | 0 full, live count}.
_ACQUIRE = (
    _PRELUDE
    + """
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local status = 1
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  status = 2
elseif redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return {0, redis.call('ZCARD', KEYS[1])}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
expire_with_last(KEYS[1])
return {status, redis.call('ZCARD', KEYS[1])}
"""
)

# KEYS: business set. ARGV: member. Returns 1 if a live slot was freed.
_RELEASE = (
    _PRELUDE
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
local freed = redis.call('ZREM', KEYS[1], ARGV[1])
expire_with_last(KEYS[1])
return freed
"""
)

# KEYS: business set. Returns the live count.
_COUNT = (
    _PRELUDE
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
return redis.call('ZCARD', KEYS[1])
"""
)


def slots_key(business_id: int) -> str:
    return f"{KEY_PREFIX}{business_id}"


class OutboundSlots:
    """The outbound semaphores of every business; safe to share between tasks and processes."""

    def __init__(self, redis: Redis, *, ttl: float = DEFAULT_TTL_S) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.ttl = ttl
        self._ttl_ms = max(1, round(ttl * 1000))
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self._count = redis.register_script(_COUNT)

    async def acquire(self, business_id: int, call_id: int, limit: int) -> bool:
        """Take a slot for call row ``call_id`` unless ``limit`` calls are live; True when held (a call
        that already holds one keeps it, with its expiry pushed forward)."""
        status, live = await self._acquire(keys=[slots_key(business_id)], args=[call_id, limit, self._ttl_ms])
        if int(status) == 0:
            log.debug("outbound_slot.full", business_id=business_id, call_id=call_id, live=int(live))
            return False
        log.debug("outbound_slot.acquired", business_id=business_id, call_id=call_id, live=int(live))
        return True

    async def release(self, business_id: int, call_id: int) -> bool:
        """Give the slot back; True only the first time (repeats are harmless)."""
        freed = bool(await self._release(keys=[slots_key(business_id)], args=[call_id]))
        if freed:
            log.debug("outbound_slot.released", business_id=business_id, call_id=call_id)
        return freed

    async def live(self, business_id: int) -> int:
        """Live outbound slots of the business (expired ones dropped)."""
        return int(await self._count(keys=[slots_key(business_id)]))
