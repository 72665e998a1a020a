"""Running one accepted media stream as a call: the provider, the session, the turns and the record.

:func:`run_call` is what :mod:`prosaas_calls.media.stream` does once a stream proved its token. It reads
the call and its business, asks the app's provider factory for a voice provider (none available → the
stream is closed and the call marked ``no_provider``), then runs the two directions as two tasks —
Twilio → provider (this socket's messages) and provider → Twilio (:meth:`CallSession.run_provider`) —
and the watchdog (:mod:`prosaas_calls.watchdog`: silence prompts, maximum length) until one ends
(``stop``, the socket closing, the provider closing, the agent ending or transferring the call).
Afterwards the call row gets its stream sid, provider, how it ended and the stream's figures.

The provider is the business's choice (``ai_provider``): ``openai`` and ``auto`` use OpenAI Realtime
when ``OPENAI_API_KEY`` is set, ``offline`` — and ``auto`` without a key — the offline stack
(pocketsphinx + espeak-ng), so a deployment without keys still answers its calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI, WebSocket
from sqlalchemy import func, select, update
from twilio.twiml.voice_response import VoiceResponse

from prosaas_calls.call_metrics import CallMetrics
from prosaas_calls.media.twilio_protocol import Start, Stop, StreamCounters
from prosaas_calls.providers.base import ProviderUnavailable, SessionConfig, VoiceProvider
from prosaas_calls.providers.offline.provider import OfflineProvider, decoder_pool
from prosaas_calls.providers.openai_realtime import OpenAIRealtimeProvider
from prosaas_calls.recording import start_recording_soon
from prosaas_calls.session import CallSession
from prosaas_calls.settings import CallsSettings
from prosaas_calls.tools import TOOL_SPECS, CallTools
from prosaas_calls.turns import TurnWriter
from prosaas_calls.twilio_rest import TwilioError, TwilioVoice
from prosaas_calls.watchdog import CallLimits, watch
from prosaas_common.db import unit_of_work
from prosaas_common.logging import bind_context, get_logger
from prosaas_common.models import Business, BusinessSettings, Call, CallDirection
from prosaas_common.web import ServiceResources

log = get_logger("prosaas.calls.runner")

ProviderFactory = Callable[[SessionConfig], VoiceProvider | None]
Receive = Callable[[], Awaitable[object | None]]
DEFAULT_GREETING = "Hello, thank you for calling {business}. How can I help you today?"


def no_provider(config: SessionConfig) -> VoiceProvider | None:
    return None


def settings_provider_factory(settings: CallsSettings) -> ProviderFactory:
    """The business's provider: OpenAI Realtime when chosen (or ``auto``) and a key is set, else offline;
    none when neither can run here (no key and no espeak-ng)."""
    if settings.openai_api_key is None and OfflineProvider.available():
        decoder_pool().warm()  # offline is every call's provider: load the model now, not on the first call

    def factory(config: SessionConfig) -> VoiceProvider | None:
        if config.ai_provider != "offline":
            openai = OpenAIRealtimeProvider.from_settings(settings)
            if openai is not None:
                return openai
            if config.ai_provider == "openai":
                log.warning(
                    "call.provider_fallback", call_sid=config.call_sid, wanted="openai", reason="no key"
                )
        return OfflineProvider() if OfflineProvider.available() else None

    return factory


def provider_factory(app: FastAPI) -> ProviderFactory:
    """The app's factory (``app.state.provider_factory``: set by ``create_app``; tests put their own)."""
    factory: ProviderFactory = getattr(app.state, "provider_factory", None) or no_provider
    return factory


@dataclass(frozen=True)
class CallContext:
    call_id: int
    business_id: int
    caller: str
    config: SessionConfig
    limits: CallLimits
    record: bool  # the business records its calls


async def load_call(resources: ServiceResources, start: Start) -> CallContext | None:
    async with resources.sessions() as db:
        row = (
            await db.execute(
                select(Call, Business, BusinessSettings)
                .join(Business, Business.id == Call.business_id)
                .outerjoin(BusinessSettings, BusinessSettings.business_id == Call.business_id)
                .where(Call.call_sid == start.call_sid)
            )
        ).first()
    if row is None:
        return None
    call, business, settings = row
    greeting = (settings.greeting if settings else "") or DEFAULT_GREETING.format(business=business.name)
    config = SessionConfig(
        call_sid=call.call_sid,
        business_id=business.id,
        business_name=business.name,
        greeting=greeting,
        instructions=settings.system_prompt if settings else "",
        voice=settings.ai_voice if settings else "alloy",
        language=settings.ai_language if settings else business.locale,
        tools=TOOL_SPECS,
        ai_provider=settings.ai_provider if settings else "auto",
    )
    limits = (
        CallLimits(
            silence_timeout_s=settings.silence_timeout_s,
            silence_prompts=settings.silence_prompts_before_hangup,
            max_call_length_s=settings.max_call_length_s,
        )
        if settings
        else CallLimits()
    )
    # The other party: who called in, or the lead an outbound call rang.
    other_party = call.to_number if call.direction == CallDirection.OUTBOUND else call.from_number
    recording = bool(settings and settings.recording_enabled)
    return CallContext(call.id, business.id, other_party, config, limits, recording)


async def relay_twilio(session: CallSession, receive: Receive) -> str:
    """Twilio → provider until ``stop`` or the socket closes; how it ended."""
    while (event := await receive()) is not None:
        if isinstance(event, Stop):
            return "stop"
        await session.on_twilio(event)
    return "socket_closed"


async def run_call(
    websocket: WebSocket,
    start: Start,
    counters: StreamCounters,
    receive: Receive,
) -> str:
    """Run the call of an accepted stream; returns how it ended."""
    resources: ServiceResources = websocket.app.state.resources
    context = await load_call(resources, start)
    provider = provider_factory(websocket.app)(context.config) if context else None
    if context is None or provider is None:
        log.warning("call.no_provider", call_sid=start.call_sid, known_call=context is not None)
        return "no_provider"
    if context.record:
        start_recording_soon(websocket.app, start.call_sid, context.business_id)  # a task: never delays audio
    turns = TurnWriter(resources.sessions, call_id=context.call_id, business_id=context.business_id)
    tools = CallTools(
        resources.sessions,
        resources.job_pool,
        business_id=context.business_id,
        call_sid=start.call_sid,
        caller=context.caller,
    )
    turns.start()
    session = CallSession(
        call_sid=start.call_sid,
        stream_sid=start.stream_sid,
        send=websocket.send_text,
        provider=provider,
        turns=turns,
        counters=counters,
        tools=tools,
        requested_end=tools.requested_end,
        before_end=lambda reason: transfer_if_asked(
            getattr(websocket.app.state, "twilio_voice", None), tools, provider, reason
        ),
    )
    ended_by = "error"
    try:
        try:
            await provider.start(context.config)
        except ProviderUnavailable as exc:
            log.warning(
                "call.provider_unavailable", call_sid=start.call_sid, provider=provider.name, error=str(exc)
            )
            ended_by = "provider_unavailable"
            return ended_by
        tasks = {
            asyncio.create_task(relay_twilio(session, receive), name=f"in:{start.call_sid}"),
            asyncio.create_task(session.run_provider(), name=f"out:{start.call_sid}"),
            asyncio.create_task(watch(session, provider, context.limits), name=f"watch:{start.call_sid}"),
        }
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ended_by = done.pop().result()
    finally:
        await provider.close()
        await turns.close()
        await record_end(resources, context, start, provider.name, ended_by, session, turns.saved)
        observe(websocket.app, ended_by, session)
    return ended_by


TRANSFER_FAILED = "I'm sorry, I couldn't transfer you right now. I can take a message for the team instead."


async def transfer_if_asked(
    client: TwilioVoice | None, tools: CallTools, provider: VoiceProvider, reason: str
) -> bool:
    """Before a ``transferred`` end: redirect the live call to the business's number with ``<Dial>``.
    False (the call goes on, the agent apologises) when Twilio cannot do it."""
    if reason != "transferred" or tools.transfer_to is None:
        return True
    number, tools.transfer_to = tools.transfer_to, None
    dial = VoiceResponse()
    dial.dial(number)
    try:
        if client is None:
            raise TwilioError(None, None, "Twilio is not configured")
        await client.update_call(tools.call_sid, str(dial))
    except TwilioError as exc:
        log.warning("call.transfer_failed", call_sid=tools.call_sid, error=str(exc))
        await provider.prompt(TRANSFER_FAILED)
        return False
    log.info("call.transferred", call_sid=tools.call_sid)
    return True


def observe(app: FastAPI, ended_by: str, session: CallSession) -> None:
    """The call's figures into ``/metrics`` (once per call) and its ``call.ended`` log line's context."""
    metrics: CallMetrics | None = getattr(app.state, "call_metrics", None)
    if metrics is not None:
        metrics.observe_call(
            ended_by=ended_by,
            first_audio_ms=session.metrics.first_audio_ms,
            response_latency_ms=session.metrics.response_latency_ms,
            barge_in_reaction_ms=session.metrics.barge_in_reaction_ms,
            frames_in=session.counters.frames_in,
            frames_out=session.counters.frames_out,
            dropped=session.counters.malformed + session.counters.unknown_events,
        )
    latencies = sorted(session.metrics.response_latency_ms)
    bind_context(
        first_audio_ms=round(session.metrics.first_audio_ms or 0, 1),
        turns=len(latencies),
        response_latency_p50_ms=round(latencies[len(latencies) // 2], 1) if latencies else None,
        barge_ins=session.metrics.barge_ins,
        tool_calls=session.metrics.tool_calls,
    )


async def record_end(
    resources: ServiceResources,
    context: CallContext,
    start: Start,
    provider: str,
    ended_by: str,
    session: CallSession,
    turns_saved: int,
) -> None:
    usage = {
        **session.counters.as_dict(),
        "barge_ins": session.metrics.barge_ins,
        "tool_calls": session.metrics.tool_calls,
        "turns_saved": turns_saved,
    }
    async with unit_of_work(resources.sessions) as db:
        await db.execute(
            update(Call)
            .where(Call.id == context.call_id)
            .values(
                stream_sid=start.stream_sid,
                provider=provider,
                usage=Call.usage.op("||")(usage),  # calls.finalize may have written its part already
                end_reason=func.coalesce(Call.end_reason, ended_by),
            )
        )
    log.debug("call.recorded", call_sid=start.call_sid, ended_by=ended_by)
