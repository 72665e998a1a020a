"""The call's clock: silence prompts and the maximum call length, whatever the provider.

:func:`watch` runs beside the call's two relay tasks. When neither side has said anything for the
business's ``silence_timeout_s`` (the agent's audio all heard, no caller speech or key press), the agent
asks whether the caller is still there; after ``silence_prompts_before_hangup`` unanswered prompts it
says goodbye and the call ends (``silence``). At ``max_call_length_s`` it says a time-limit goodbye and
the call ends (``max_length``). Goodbyes go through :meth:`CallSession.end_after_response`, so they are
heard before the call ends; if the provider never answers, the watchdog ends the call itself after a
grace period. It sleeps until the next moment something could be due — no polling per frame.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from prosaas_calls.providers.base import VoiceProvider
from prosaas_calls.session import CallSession
from prosaas_common.logging import get_logger

log = get_logger("prosaas.calls.watchdog")

SILENCE_PROMPT = "Are you still there?"
SILENCE_GOODBYE = "I can't hear you, so I'll end the call now. Please call again any time. Goodbye."
TIME_LIMIT_GOODBYE = (
    "I'm sorry, we have reached the time limit for this call. Please call again if you need anything else. "
    "Goodbye."
)
END_GRACE_S = 15.0  # a goodbye that never comes still ends the call this long after it was asked for


@dataclass(frozen=True, slots=True)
class CallLimits:
    silence_timeout_s: float = 8.0
    silence_prompts: int = 2
    max_call_length_s: float = 600.0


async def watch(
    session: CallSession,
    provider: VoiceProvider,
    limits: CallLimits,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Returns only to force an end the provider did not carry out (after :data:`END_GRACE_S`)."""
    deadline = clock() + limits.max_call_length_s
    prompts, prompted_at = 0, clock()
    while True:
        now = clock()
        if now >= deadline:
            return await goodbye(session, provider, TIME_LIMIT_GOODBYE, "max_length")
        if session.caller_active_at is not None and session.caller_active_at > prompted_at:
            prompts = 0  # the caller answered
        silent_until = session.quiet_since + limits.silence_timeout_s
        if not session.agent_speaking and now >= silent_until:
            if prompts >= limits.silence_prompts:
                return await goodbye(session, provider, SILENCE_GOODBYE, "silence")
            prompts, prompted_at = prompts + 1, now
            session.quiet_since = now  # the next prompt only after another silent stretch
            log.debug("call.silence_prompt", call_sid=session.call_sid, prompt=prompts)
            await provider.prompt(SILENCE_PROMPT)
            continue
        wake = min(deadline, silent_until if not session.agent_speaking else now + limits.silence_timeout_s)
        await asyncio.sleep(max(0.0, wake - now))


async def goodbye(session: CallSession, provider: VoiceProvider, text: str, reason: str) -> str:
    log.debug("call.watchdog_end", call_sid=session.call_sid, reason=reason)
    session.end_after_response(reason)
    await provider.prompt(text)
    await asyncio.sleep(END_GRACE_S)
    return reason
