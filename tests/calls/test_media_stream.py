"""``/ws/twilio-media`` on a live server: a stream is accepted only with the call's one-time token in its
``start`` (5 s to send it), keeps the call's capacity slot while it lives, survives malformed frames, and
releases the slot on ``stop`` or when the socket closes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import websockets
from redis.asyncio import Redis
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_calls import stream_tokens
from prosaas_calls.app import create_app
from prosaas_calls.capacity import Acquired, CallCapacity
from prosaas_calls.providers.base import SessionConfig
from prosaas_calls.providers.scripted import ScriptedProvider
from prosaas_calls.settings import CallsSettings
from prosaas_common.logging import clear_context, configure_logging
from prosaas_common.models import Business, Call, CallTurn
from prosaas_common.settings import DEV_INTERNAL_SECRET, LogFormat
from tests.support import serving, wait_until

CALL_SID = "CA" + "7" * 32
STREAM_SID = "MZ" + "7" * 32


@asynccontextmanager
async def live_server(
    settings: CallsSettings, providers: list[ScriptedProvider] | None = None
) -> AsyncIterator[str]:
    """The calls app under uvicorn on a free port, its calls voiced by scripted providers (collected in
    ``providers``: each says a 100 ms greeting); yields its ws:// base URL."""
    app = create_app(settings)
    made = providers if providers is not None else []

    def scripted(config: SessionConfig) -> ScriptedProvider:
        made.append(ScriptedProvider(greeting_audio=bytes([0x7F]) * 800))
        return made[-1]

    app.state.provider_factory = scripted
    async with serving(app) as base_url:
        yield base_url.replace("http://", "ws://", 1)


@pytest.fixture
async def server(make_settings: Callable[..., CallsSettings]) -> AsyncIterator[str]:
    async with live_server(make_settings()) as base:
        yield base


async def httpx_get_metrics(ws_base: str) -> str:
    """The service's Prometheus text (the development INTERNAL_SECRET is a metrics token in tests)."""
    async with httpx.AsyncClient(base_url=ws_base.replace("ws://", "http://")) as http:
        response = await http.get("/metrics", headers={"Authorization": f"Bearer {DEV_INTERNAL_SECRET}"})
        response.raise_for_status()
        return response.text


def start(token: str, call_sid: str = CALL_SID) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": STREAM_SID,
            "start": {
                "accountSid": "AC" + "0" * 32,
                "streamSid": STREAM_SID,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "customParameters": {"call_sid": call_sid, "business_id": "1", "stream_token": token},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )


def media(n: int) -> str:
    payload = base64.b64encode(bytes([0xFF]) * 160).decode()
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(n + 2),
            "streamSid": STREAM_SID,
            "media": {"track": "inbound", "chunk": str(n + 1), "timestamp": str(n * 20), "payload": payload},
        }
    )


STOP = json.dumps(
    {
        "event": "stop",
        "sequenceNumber": "99",
        "streamSid": STREAM_SID,
        "stop": {"accountSid": "AC", "callSid": CALL_SID},
    }
)
CONNECTED = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


async def a_live_call(redis: Redis, engine: AsyncEngine, ttl: float = 60.0) -> tuple[CallCapacity, str]:
    """What ``incoming_call`` leaves behind: a calls row, a capacity slot and a stream token."""
    async with engine.begin() as conn:
        business_id = (
            await conn.execute(insert(Business).values(name="Dental").returning(Business.id))
        ).scalar_one()
        await conn.execute(
            insert(Call).values(
                business_id=business_id,
                call_sid=CALL_SID,
                direction="inbound",
                from_number="+1",
                to_number="+2",
            )
        )
    capacity = CallCapacity(redis, 50, ttl=ttl)
    assert isinstance(await capacity.acquire(CALL_SID, 1, 5), Acquired)
    return capacity, await stream_tokens.issue(redis, CALL_SID)


async def drain_until_closed(ws: Any) -> None:
    """Read what the server still sends (the greeting) until it closes the socket."""
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 10)


async def closed_with(ws: Any) -> int | None:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_a_call_runs_on_the_stream_until_stop_and_then_frees_its_slot(
    make_settings: Callable[..., CallsSettings], redis: Redis, db_engine: AsyncEngine
) -> None:
    providers: list[ScriptedProvider] = []
    capacity, token = await a_live_call(redis, db_engine)
    async with (
        live_server(make_settings(), providers) as base,
        websockets.connect(f"{base}/ws/twilio-media") as ws,
    ):
        await ws.send(CONNECTED)
        await ws.send(start(token))
        greeting = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(6)]
        assert [m["event"] for m in greeting] == ["media"] * 5 + ["mark"]  # 100 ms, then its mark
        assert {m["streamSid"] for m in greeting} == {STREAM_SID}
        for n in range(10):
            await ws.send(media(n))
        await ws.send("not json at all")
        await ws.send(json.dumps({"event": "something-new", "streamSid": STREAM_SID}))
        await ws.send(media(10))  # still alive after the garbage
        assert await capacity.active_count() == 1
        await ws.send(STOP)

        async def released() -> bool:
            return await capacity.active_count() == 0

        await wait_until(released, timeout=10)

        metrics = await httpx_get_metrics(base)
    for line in (
        'calls_total{ended_by="stop"} 1.0',
        "call_first_audio_seconds_count 1.0",
        'call_frames_total{direction="in"} 11.0',
        'call_frames_total{direction="out"} 5.0',
        "call_malformed_messages_total 2.0",
        "calls_active 0.0",
    ):
        assert line in metrics, line

    [provider] = providers
    assert provider.frames_received == 11
    assert provider.closed
    async with db_engine.connect() as conn:
        call = (await conn.execute(select(Call).where(Call.call_sid == CALL_SID))).one()
        turns = (await conn.execute(select(CallTurn.speaker, CallTurn.text))).all()
    assert (call.stream_sid, call.provider, call.end_reason) == (STREAM_SID, "scripted", "stop")
    assert [tuple(turn) for turn in turns] == [
        ("agent", "Hello, thank you for calling Dental. How can I help you today?")
    ]
    assert {k: call.usage[k] for k in ("frames_in", "frames_out", "malformed", "unknown_events")} == {
        "frames_in": 11,
        "frames_out": 5,
        "malformed": 1,
        "unknown_events": 1,
    }


async def test_a_closed_socket_frees_the_slot(server: str, redis: Redis, db_engine: AsyncEngine) -> None:
    capacity, token = await a_live_call(redis, db_engine)
    async with websockets.connect(f"{server}/ws/twilio-media") as ws:
        await ws.send(start(token))
        await ws.send(media(0))

    async def released() -> bool:
        return await capacity.active_count() == 0

    await wait_until(released, timeout=10)


async def test_the_stream_keeps_the_slot_alive_beyond_its_ttl(
    make_settings: Callable[..., CallsSettings], redis: Redis, db_engine: AsyncEngine
) -> None:
    """With CALL_SLOT_TTL_S=1.5 the stream refreshes every 0.5 s: the slot outlives its first expiry."""
    async with live_server(make_settings(call_slot_ttl_s=1.5)) as base:
        capacity, token = await a_live_call(redis, db_engine, ttl=1.5)
        first_expiry = await redis.zscore("calls:slots", CALL_SID)
        assert first_expiry is not None
        async with websockets.connect(f"{base}/ws/twilio-media") as ws:
            await ws.send(start(token))

            async def past_first_expiry() -> bool:
                seconds, micros = await redis.time()
                return bool(int(seconds) * 1000 + int(micros) // 1000 > first_expiry + 500)

            await wait_until(past_first_expiry, timeout=10)
            assert await capacity.active_count() == 1
            await ws.send(STOP)


@pytest.mark.parametrize("case", ["wrong token", "other call", "reused token"])
async def test_a_stream_without_a_valid_token_is_closed(
    server: str, redis: Redis, db_engine: AsyncEngine, case: str
) -> None:
    capacity, token = await a_live_call(redis, db_engine)
    if case == "reused token":
        assert await stream_tokens.redeem(redis, CALL_SID, token)
    message = start("forged") if case == "wrong token" else start(token)
    if case == "other call":
        message = start(token, call_sid="CA" + "8" * 32)
    async with websockets.connect(f"{server}/ws/twilio-media") as ws:
        await ws.send(message)
        assert await closed_with(ws) == 1008
    assert await capacity.active_count() == 1  # a refused stream does not touch the call's slot


async def test_no_start_within_five_seconds_closes_the_socket(server: str) -> None:
    async with websockets.connect(f"{server}/ws/twilio-media") as ws:
        await ws.send(CONNECTED)
        assert await closed_with(ws) == 1008


async def test_a_normal_call_writes_a_handful_of_info_lines(
    make_settings: Callable[..., CallsSettings], redis: Redis, db_engine: AsyncEngine
) -> None:
    """The INFO budget of one call (≤ 30 lines): frames, marks and state changes stay at DEBUG."""
    stream = io.StringIO()
    configure_logging("calls", "INFO", LogFormat.JSON, stream=stream)
    try:
        _, token = await a_live_call(redis, db_engine)
        async with live_server(make_settings()) as base, websockets.connect(f"{base}/ws/twilio-media") as ws:
            await ws.send(CONNECTED)
            await ws.send(start(token))
            for n in range(250):  # 5 s of caller audio
                await ws.send(media(n))
            await ws.send("garbage")
            await ws.send(STOP)
            await drain_until_closed(ws)
    finally:
        clear_context()
        configure_logging("tests", "WARNING", LogFormat.CONSOLE, stream=sys.stderr)
    records = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    call_lines = [r for r in records if r.get("call_sid") == CALL_SID]
    assert [r["event"] for r in call_lines] == ["call.started", "call.ended"]
    assert {r["level"] for r in call_lines} == {"info"}
    assert len(records) <= 30
