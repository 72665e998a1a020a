"""Call capacity: how many AI calls run at once, for the deployment and per business, kept in Redis.

A slot is taken when a call starts and given back when it ends. A calls process that is killed never
gives its slots back, so every slot carries an expiry time that the live call pushes forward
(``refresh`` every ``refresh_interval``); a slot nobody refreshes is dropped by the next operation of any
calls process, and no sweeper is needed. Each operation is one Lua script (check and take cannot race)
that reads the clock with Redis ``TIME``, so several calls processes judge expiry by one clock.

Keys:

- ``calls:slots``: sorted set of live slots, member the call sid, score the expiry (epoch ms); this is
  what the limits count. ``calls:slots:business:{business_id}`` is the same for one business. Each set
  expires with its last slot.
- ``calls:slot:{call_sid}``: string, the business id, expiring with the slot: for people and
  ``redis-cli``, and where ``release``/``refresh`` find the business of a call.
- ``calls:active_count``: ``ZCARD calls:slots``, rewritten by every acquire, refresh, release and
  ``active_count()``; it expires with the last slot (no key: no live call). It is a read-out only:
  ``SET calls:active_count 0`` neither frees a slot nor lets an extra call in.

Business sets are named inside the scripts of ``release``/``refresh`` (from the slot key), which a
single Redis allows and a Redis Cluster would not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from prosaas_common.logging import get_logger
from prosaas_common.settings import CommonSettings

DEFAULT_TTL_S = 60.0
SLOTS_KEY = "calls:slots"
COUNT_KEY = "calls:active_count"
SLOT_KEY_PREFIX = "calls:slot:"
BUSINESS_SLOTS_PREFIX = "calls:slots:business:"

log = get_logger("prosaas.calls.capacity")

# Shared by every script. Expired means score <= now; string keys expire at the same ms (PXAT) and
# Redis checks key expiry in a script against the time the script started, never later than TIME.
_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function purge(key, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
end

local function expire_with_last(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]
  if last then redis.call('PEXPIREAT', key, last) end
  return last
end

local function write_count(slots_key, count_key)
  local n = redis.call('ZCARD', slots_key)
  local last = expire_with_last(slots_key)
  if last then
    redis.call('SET', count_key, n, 'PXAT', last)
  else
    redis.call('SET', count_key, 0)
  end
  return n
end

local function hold(slots_key, business_key, slot_key, sid, owner, expiry)
  redis.call('ZADD', slots_key, expiry, sid)
  redis.call('ZADD', business_key, expiry, sid)
  expire_with_last(business_key)
  redis.call('SET', slot_key, owner, 'PXAT', expiry)
end
"""

# KEYS: slots, count, slot key, business slots. ARGV: sid, business id, platform limit,
# business limit, ttl ms. Returns {1 taken | 2 already held | -1 platform full | -2 business full,
# platform count (or business count when -2), owner business id}.
_ACQUIRE = (
    _PRELUDE
    + """
local now = now_ms()
local sid, owner = ARGV[1], ARGV[2]
purge(KEYS[1], now)
purge(KEYS[4], now)
local expiry = now + tonumber(ARGV[5])
if redis.call('ZSCORE', KEYS[1], sid) then
  local business_key = KEYS[4]
  local stored = redis.call('GET', KEYS[3])
  if stored then
    owner = stored
    business_key = ARGV[6] .. stored
    purge(business_key, now)
  end
  hold(KEYS[1], business_key, KEYS[3], sid, owner, expiry)
  return {2, write_count(KEYS[1], KEYS[2]), owner}
end
local active = redis.call('ZCARD', KEYS[1])
if active >= tonumber(ARGV[3]) then
  write_count(KEYS[1], KEYS[2])
  return {-1, active, owner}
end
local held = redis.call('ZCARD', KEYS[4])
if held >= tonumber(ARGV[4]) then
  write_count(KEYS[1], KEYS[2])
  return {-2, held, owner}
end
hold(KEYS[1], KEYS[4], KEYS[3], sid, owner, expiry)
return {1, write_count(KEYS[1], KEYS[2]), owner}
"""
)

# KEYS: slots, count, slot key. ARGV: sid, ttl ms, business slots prefix. Returns 1 if renewed.
_REFRESH = (
    _PRELUDE
    + """
local now = now_ms()
local sid = ARGV[1]
purge(KEYS[1], now)
local alive = redis.call('ZSCORE', KEYS[1], sid)
local owner = redis.call('GET', KEYS[3])
if not (alive and owner) then
  -- A slot key deleted by hand ends the slot (its business entry expires by itself).
  redis.call('ZREM', KEYS[1], sid)
  redis.call('DEL', KEYS[3])
  write_count(KEYS[1], KEYS[2])
  return 0
end
local business_key = ARGV[3] .. owner
purge(business_key, now)
hold(KEYS[1], business_key, KEYS[3], sid, owner, now + tonumber(ARGV[2]))
write_count(KEYS[1], KEYS[2])
return 1
"""
)

# KEYS: slots, count, slot key. ARGV: sid, business slots prefix. Returns 1 if a live slot was freed.
_RELEASE = (
    _PRELUDE
    + """
local now = now_ms()
local sid = ARGV[1]
purge(KEYS[1], now)
local owner = redis.call('GET', KEYS[3])
local freed = redis.call('ZREM', KEYS[1], sid)
redis.call('DEL', KEYS[3])
if owner then
  local business_key = ARGV[2] .. owner
  redis.call('ZREM', business_key, sid)
  purge(business_key, now)
  expire_with_last(business_key)
end
write_count(KEYS[1], KEYS[2])
return freed
"""
)

# KEYS: slots, count. Returns the number of live slots.
_COUNT = (
    _PRELUDE
    + """
purge(KEYS[1], now_ms())
return write_count(KEYS[1], KEYS[2])
"""
)


@dataclass(frozen=True, slots=True)
class Acquired:
    """The call holds a slot; ``already_held`` when it held one before (a retried webhook)."""

    call_sid: str
    business_id: int
    already_held: bool
    active: int


@dataclass(frozen=True, slots=True)
class Refused:
    """No slot: ``active`` calls already run against ``limit`` (the deployment's or the business's)."""

    reason: Literal["platform", "business"]
    active: int
    limit: int


def slot_key(call_sid: str) -> str:
    return f"{SLOT_KEY_PREFIX}{call_sid}"


def business_slots_key(business_id: int) -> str:
    return f"{BUSINESS_SLOTS_PREFIX}{business_id}"


class CallCapacity:
    """Slots for concurrent calls; safe to share between tasks and between calls processes."""

    def __init__(self, redis: Redis, platform_limit: int, *, ttl: float = DEFAULT_TTL_S) -> None:
        if platform_limit < 1:
            raise ValueError("platform_limit must be at least 1")
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.platform_limit = platform_limit
        self.ttl = ttl
        self._ttl_ms = max(1, round(ttl * 1000))
        self._acquire = redis.register_script(_ACQUIRE)
        self._refresh = redis.register_script(_REFRESH)
        self._release = redis.register_script(_RELEASE)
        self._count = redis.register_script(_COUNT)

    @classmethod
    def from_settings(
        cls, redis: Redis, settings: CommonSettings, *, ttl: float = DEFAULT_TTL_S
    ) -> CallCapacity:
        return cls(redis, settings.max_concurrent_calls, ttl=ttl)

    @property
    def refresh_interval(self) -> float:
        """How often a live call should refresh: two refreshes may fail before the slot expires."""
        return self.ttl / 3

    async def acquire(self, call_sid: str, business_id: int, business_limit: int) -> Acquired | Refused:
        """Take a slot for ``call_sid`` unless the deployment or the business is at its limit."""
        if not call_sid:
            raise ValueError("call_sid must not be empty")
        keys = [SLOTS_KEY, COUNT_KEY, slot_key(call_sid), business_slots_key(business_id)]
        args: list[Any] = [
            call_sid,
            business_id,
            self.platform_limit,
            business_limit,
            self._ttl_ms,
            BUSINESS_SLOTS_PREFIX,
        ]
        status, count, owner = await self._acquire(keys=keys, args=args)
        status, count = int(status), int(count)
        if status > 0:
            log.debug(
                "call_capacity.acquired",
                call_sid=call_sid,
                business_id=business_id,
                active=count,
                already_held=status == 2,
            )
            return Acquired(call_sid, int(owner), already_held=status == 2, active=count)
        refused = (
            Refused("platform", count, self.platform_limit)
            if status == -1
            else Refused("business", count, business_limit)
        )
        log.info(
            "call_capacity.refused",
            call_sid=call_sid,
            business_id=business_id,
            reason=refused.reason,
            active=refused.active,
            limit=refused.limit,
        )
        return refused

    async def refresh(self, call_sid: str) -> bool:
        """Push the slot's expiry ``ttl`` ahead; False if the slot is gone (expired or released)."""
        renewed = bool(
            await self._refresh(
                keys=[SLOTS_KEY, COUNT_KEY, slot_key(call_sid)],
                args=[call_sid, self._ttl_ms, BUSINESS_SLOTS_PREFIX],
            )
        )
        if not renewed:
            log.debug("call_capacity.slot_gone", call_sid=call_sid)
        return renewed

    async def release(self, call_sid: str) -> bool:
        """Give the slot back; True only for the call that freed a live slot, so repeats are harmless."""
        freed = bool(
            await self._release(
                keys=[SLOTS_KEY, COUNT_KEY, slot_key(call_sid)], args=[call_sid, BUSINESS_SLOTS_PREFIX]
            )
        )
        if freed:
            log.debug("call_capacity.released", call_sid=call_sid)
        return freed

    async def active_count(self) -> int:
        """Live slots on the deployment (expired ones dropped); also rewrites ``calls:active_count``."""
        return int(await self._count(keys=[SLOTS_KEY, COUNT_KEY]))
