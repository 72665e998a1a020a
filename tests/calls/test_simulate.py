"""The call simulator (``python -m prosaas_calls.simulate``) against a live calls service voiced by the
OpenAI provider talking to the local Realtime server (server VAD emulated): the signed webhook is accepted,
the stream runs, marks are echoed as the audio plays, a barge-in is answered with ``clear`` (pending marks
flushed, the unplayed audio not in the recording), DTMF reaches the model, the bot's audio is written as
a WAV of the expected length, and the CLI prints per-call and aggregate figures (``--calls 3``)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from prosaas_calls.app import create_app
from prosaas_calls.settings import CallsSettings
from prosaas_calls.simulate.caller import SimulatedCall, Target, parse_twiml
from prosaas_calls.simulate.playback import PlaybackClock
from prosaas_calls.simulate.report import percentile_over, read_stored
from prosaas_calls.simulate.runner import Plan, one_call, run_calls
from prosaas_calls.simulate.script import ScriptError, parse_script, prepare_audio
from prosaas_calls.speech.tts import synthesize
from prosaas_common.models import Business, BusinessPhoneNumber, Call
from tests.fakes.openai_realtime import FakeRealtime
from tests.support import ROOT, serving

TOKEN = "simulate-test-auth-token"
PUBLIC_HOST = "calls.example.com"
NUMBER = "+12125550177"
KEY = "sk-simulate-test-key"
RESPONSE_MS = 300  # the fake's response: 3 deltas of 100 ms
FRAMES_PER_RESPONSE = RESPONSE_MS // 20


@pytest.fixture
async def business(db_engine: AsyncEngine) -> int:
    async with async_sessionmaker(db_engine).begin() as db:
        row = Business(name="Simulated Salon", timezone="Europe/London", default_region="GB")
        db.add(row)
        await db.flush()
        db.add(BusinessPhoneNumber(business_id=row.id, e164=NUMBER))
        return row.id


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtime]:
    async with FakeRealtime(api_key=KEY, vad=True, silence_ms=200) as server:
        yield server


@asynccontextmanager
async def live_calls(settings: CallsSettings) -> AsyncIterator[str]:
    """The calls app (its own provider factory: OpenAI from the settings) under uvicorn; its http URL."""
    async with serving(create_app(settings)) as base_url:
        yield base_url


@pytest.fixture
async def service(
    make_settings: Callable[..., CallsSettings], fake: FakeRealtime, business: int
) -> AsyncIterator[str]:
    settings = make_settings(
        twilio_account_sid="AC" + "5" * 32,
        twilio_auth_token=TOKEN,
        public_host=PUBLIC_HOST,
        openai_api_key=KEY,
        openai_realtime_url=fake.url,
    )
    async with live_calls(settings) as base:
        yield base


def target(base: str, token: str = TOKEN) -> Target:
    return Target(base_url=base, public_host=PUBLIC_HOST, auth_token=token, to=NUMBER)


async def test_a_scripted_call_plays_like_twilio(
    service: str, fake: FakeRealtime, db_engine: AsyncEngine, database_url: str
) -> None:
    steps = parse_script(["wait", "tone:400", "wait", "dtmf:7", "hangup"])
    plan = Plan(steps=steps, audio=await prepare_audio(steps, synthesize), record=True)
    async with httpx.AsyncClient() as http:
        result = await one_call(target(service), http, plan)

    assert result.refused is None
    assert result.ended_by == "caller_hangup"
    # Greeting + the answer to the tone, each 300 ms in 3 deltas: 3 marks each, all echoed once played.
    assert result.frames_received == 2 * FRAMES_PER_RESPONSE
    assert result.bot_audio_ms == 2 * RESPONSE_MS
    assert result.marks_echoed == 6
    assert result.first_audio_ms is not None
    assert len(result.response_latency_ms) == 1
    assert result.clears == 0
    # The recording is the audio as played: both responses' bytes (the fake's audio never is 0xFF),
    # with silence in between.
    assert sum(1 for b in result.recording if b != 0xFF) == 2 * RESPONSE_MS * 8
    assert len(result.recording) >= 2 * RESPONSE_MS * 8 + 400 * 8
    assert [e for e in fake.of_type("conversation.item.create") if "pressed 7" in json.dumps(e)]
    assert len(fake.of_type("response.create")) == 1  # the greeting; the answer came from the VAD

    stored = (await read_stored(database_url, [result.call_sid]))[result.call_sid]
    assert stored.status == "completed"  # the signed terminal call_status was accepted
    assert stored.usage["frames_in"] == result.frames_sent  # no caller frame lost
    assert stored.usage["frames_out"] == result.frames_received  # no bot frame lost
    assert [speaker for _, speaker, _ in stored.turns].count("caller") == 1


async def test_a_barge_in_is_cleared_and_its_marks_flushed(service: str, fake: FakeRealtime) -> None:
    fake.deltas, fake.pace = 20, 1.0  # a 2 s greeting streamed at real time
    steps = parse_script(["wait:start", "wait:0.4", "tone:300", "wait", "hangup"])
    plan = Plan(steps=steps, audio=await prepare_audio(steps, synthesize), record=True)
    async with httpx.AsyncClient() as http:
        result = await one_call(target(service), http, plan)

    assert result.clears == 1
    assert len(result.barge_in_ms) == 1
    assert fake.of_type("conversation.item.truncate")
    # The greeting was cut: less of it played than was sent; the answer played whole.
    played = sum(1 for b in result.recording if b != 0xFF)
    assert played < result.bot_audio_ms * 8
    assert result.bot_audio_ms < 2 * 2000


async def test_a_forged_signature_gets_no_stream(service: str) -> None:
    steps = parse_script(["wait"])
    async with httpx.AsyncClient() as http:
        call = SimulatedCall(target(service, token="not-the-token"), http)
        with pytest.raises(RuntimeError, match="HTTP 403"):
            await call.dial()
        result = await one_call(target(service, "not-the-token"), http, Plan(steps, {}))
    assert result.ended_by.startswith("error: RuntimeError: incoming_call answered HTTP 403")
    assert result.frames_sent == 0


async def test_an_unknown_number_is_reported_as_refused(service: str) -> None:
    other = Target(base_url=service, public_host=PUBLIC_HOST, auth_token=TOKEN, to="+12125559999")
    [result] = await run_calls(other, Plan(parse_script(["wait"]), {}))
    assert result.refused is not None
    assert "not available" in result.refused


async def test_the_cli_runs_three_calls_and_prints_the_aggregate(
    service: str, database_url: str, db_engine: AsyncEngine, tmp_path: Path
) -> None:
    wav = tmp_path / "bot.wav"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "prosaas_calls.simulate",
        *("--base-url", service, "--public-host", PUBLIC_HOST, "--auth-token", TOKEN, "--to", NUMBER),
        *("--calls", "3", "--wav-out", str(wav), "--database-url", database_url),
        *("--step", "wait", "--step", "say:Hello there", "--step", "wait", "--step", "hangup"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    text = out.decode()
    print(text)  # shown when an assertion below fails
    assert process.returncode == 0, text
    assert "3 calls streamed, 0 refused, 0 without bot audio" in text
    for label in (
        "start → first bot audio ms",
        "response latency ms",
        "playback gap p99 over the 90 frames played: 0.0 ms",
    ):
        assert label in text
    assert re.search(r"response latency ms\s+3\s", text)  # one answer per call, timed from the voice's end
    assert "lost 0 in, 0 out" in text
    assert "caller: I would like to book an appointment." in text  # the stored transcript (the fake heard it)
    for index in (1, 2, 3):
        with wave.open(str(tmp_path / f"bot-{index}.wav")) as recorded:
            assert recorded.getframerate() == 8000
            # At least both responses (greeting, answer) played: twice 300 ms.
            assert recorded.getnframes() >= 2 * RESPONSE_MS * 8
    async with db_engine.connect() as conn:
        statuses = (await conn.execute(select(Call.status).where(Call.to_number == NUMBER))).scalars().all()
    assert sorted(statuses) == ["completed"] * 3


def test_twiml_and_steps_are_read_strictly() -> None:
    twiml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://h/ws/twilio-media">'
        '<Parameter name="call_sid" value="CA1" /><Parameter name="stream_token" value="t" /></Stream>'
        "</Connect></Response>"
    )
    order = parse_twiml(twiml)
    assert order.url == "wss://h/ws/twilio-media"
    assert order.parameters == {"call_sid": "CA1", "stream_token": "t"}
    assert target("http://127.0.0.1:5050").stream_url(order.url) == "ws://127.0.0.1:5050/ws/twilio-media"
    refused = parse_twiml("<Response><Say>Busy.</Say><Hangup /></Response>")
    assert (refused.url, refused.said) == (None, "Busy.")
    for bad in ("shout:hi", "say:", "wait:soon", "tone:long", "wav:/no/such.wav"):
        with pytest.raises(ScriptError):
            parse_script([bad])


def test_per_frame_gap_percentiles_count_the_frames_without_a_gap() -> None:
    assert percentile_over([], 100, 99) == 0.0
    assert percentile_over([30.0], 100, 99) == 0.0  # 1 frame in 100 after a gap: p99 is still 0
    assert percentile_over([30.0, 50.0], 100, 99) == 30.0
    assert percentile_over([], 0, 99) is None


def test_the_playback_clock_counts_gaps_inside_a_response_only() -> None:
    clock = PlaybackClock(record=True)
    frame = bytes([0x40]) * 160
    clock.on_media(frame, 0)
    clock.on_mark("r1:20")
    clock.on_media(frame, 400)  # 30 ms after the first frame ran out: a gap in r1
    clock.on_mark("r1:40")
    clock.on_media(frame, 4000)  # long after: but it is r2, a new response
    clock.on_mark("r2:20")
    assert clock.gaps_ms == [30.0]
    assert clock.due_marks(159) == []
    assert clock.due_marks(560) == ["r1:20", "r1:40"]
    clock.on_media(frame, 4100)  # queued behind r2's first frame, until 4320
    clock.on_mark("r2:40")
    assert clock.on_clear(4200) == ["r2:20", "r2:40"]  # everything pending is echoed at once
    assert len(clock.recording) == 4200  # what was queued after "now" is gone
    assert clock.played(4300)[-100:] == b"\xff" * 100
