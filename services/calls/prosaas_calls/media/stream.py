"""``/ws/twilio-media``: the WebSocket Twilio opens for a call's media stream (the transport).

The socket must send ``start`` within :data:`START_TIMEOUT_S` carrying, in its custom parameters, the
call sid and the one-time token of the call's TwiML (:mod:`prosaas_calls.stream_tokens`); anything else
is closed with 1008 and changes nothing. While the stream lives it keeps the call's capacity slot
alive (refresh every ``ttl / 3``) and counts frames; malformed or unknown messages are counted, logged at
DEBUG and dropped. The call itself runs in :func:`prosaas_calls.call_runner.run_call`; when it ends
(``stop``, a closed socket, the provider closing) the slot is released (idempotently, like the terminal
``call_status``).
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, FastAPI, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from prosaas_calls import stream_tokens
from prosaas_calls.call_metrics import CallMetrics
from prosaas_calls.call_runner import run_call
from prosaas_calls.capacity import DEFAULT_TTL_S, CallCapacity
from prosaas_calls.media.twilio_protocol import (
    Malformed,
    Media,
    Start,
    StreamCounters,
    parse_message,
)
from prosaas_common.logging import get_logger
from prosaas_common.web import ServiceResources

router = APIRouter()
log = get_logger("prosaas.calls.stream")

START_TIMEOUT_S = 5.0
POLICY_VIOLATION = 1008


def call_capacity(app: FastAPI) -> CallCapacity:
    """The process's capacity gate (one per app, on the shared Redis client)."""
    state = app.state
    if getattr(state, "call_capacity", None) is None:
        resources: ServiceResources = state.resources
        ttl = getattr(resources.settings, "call_slot_ttl_s", DEFAULT_TTL_S)
        state.call_capacity = CallCapacity.from_settings(resources.redis, resources.settings, ttl=ttl)
    capacity: CallCapacity = state.call_capacity
    return capacity


async def receive_event(websocket: WebSocket, counters: StreamCounters) -> object | None:
    """The next well-formed event, or None when the socket closed. Bad messages are counted and skipped."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        raw = message.get("text")
        if raw is None:
            raw = message.get("bytes") or b""
        event = parse_message(raw)
        if isinstance(event, Malformed):
            if event.is_unknown_event:
                counters.unknown_events += 1
            else:
                counters.malformed += 1
            log.debug("stream.message_dropped", reason=event.reason, message_event=event.event)
            continue
        if isinstance(event, Media):
            counters.frames_in += 1
        return event


async def await_start(websocket: WebSocket, counters: StreamCounters) -> Start | None:
    """The ``start`` message (``connected`` before it is fine), or None after the timeout or a close."""
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                event = await receive_event(websocket, counters)
                if event is None or isinstance(event, Start):
                    return event
    except TimeoutError:
        log.debug("stream.no_start", timeout_s=START_TIMEOUT_S)
        await close(websocket, "no start message")
        return None


async def close(websocket: WebSocket, reason: str, code: int = POLICY_VIOLATION) -> None:
    if websocket.client_state is WebSocketState.CONNECTED:
        # Twilio may close its side right after ``stop``: a close that finds the socket gone is normal.
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=code, reason=reason)


async def keep_slot(capacity: CallCapacity, call_sid: str) -> None:
    """Refresh the call's capacity slot while the stream lives; a lost slot is logged once."""
    while True:
        await asyncio.sleep(capacity.refresh_interval)
        if not await capacity.refresh(call_sid):
            log.warning("call.slot_lost", call_sid=call_sid)
            return


@router.websocket("/ws/twilio-media")
async def twilio_media(websocket: WebSocket) -> None:
    await websocket.accept()
    resources: ServiceResources = websocket.app.state.resources
    counters = StreamCounters()
    start = await await_start(websocket, counters)
    if start is None:
        return
    claimed = start.custom_parameters.get("call_sid", "")
    token = start.custom_parameters.get("stream_token", "")
    if claimed != start.call_sid or not await stream_tokens.redeem(resources.redis, start.call_sid, token):
        log.warning("stream.refused", call_sid=start.call_sid, reason="no valid stream token")
        await close(websocket, "invalid stream token")
        return
    capacity = call_capacity(websocket.app)
    refresher = asyncio.create_task(keep_slot(capacity, start.call_sid))
    log.info("call.started", call_sid=start.call_sid, stream_sid=start.stream_sid)
    metrics: CallMetrics | None = getattr(websocket.app.state, "call_metrics", None)
    if metrics is not None:
        metrics.active.inc()
    ended_by = "error"
    try:
        ended_by = await run_call(websocket, start, counters, lambda: receive_event(websocket, counters))
        if ended_by != "socket_closed":
            await close(websocket, ended_by, code=1000)
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        await capacity.release(start.call_sid)
        if metrics is not None:
            metrics.active.dec()
        log.info("call.ended", call_sid=start.call_sid, ended_by=ended_by, **counters.as_dict())
