"""The OpenAI Realtime provider against a local server speaking the GA protocol over a real socket: the
session it configures (µ-law both ways, server VAD, tools, voice) and the greeting first, caller audio
passed through byte for byte, transcripts, barge-in (cancel + truncate where the caller stopped
hearing, also through the call session), tool calls both ways, server errors survived, closes reported,
and the API key kept out of every log line."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import pytest
import structlog
from structlog.testing import capture_logs

from prosaas_calls.media.twilio_protocol import Dtmf, Mark, Media, StreamCounters
from prosaas_calls.providers.base import (
    AgentAudio,
    AgentTranscript,
    CallerTranscript,
    ProviderClosed,
    ProviderEvent,
    ProviderUnavailable,
    ResponseDone,
    SessionConfig,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    ToolSpec,
)
from prosaas_calls.providers.openai_realtime import OpenAIRealtimeProvider, realtime_url
from prosaas_calls.session import CallSession
from prosaas_calls.settings import CallsSettings
from prosaas_common.logging import clear_context, configure_logging
from prosaas_common.settings import ConfigError, LogFormat, build_settings
from tests.fakes.openai_realtime import FakeRealtime
from tests.support import closed_port, wait_until

KEY = "sk-proj-Zq8TESTx4kEYnEVERlOGGED9f2"
CONFIG = SessionConfig(
    call_sid="CA" + "7" * 32,
    business_id=1,
    business_name="Dana's Hair Studio",
    greeting="Hi, Dana's Hair Studio, how can I help?",
    instructions="Book haircuts; never promise prices.",
    voice="marin",
    language="en",
    tools=(
        ToolSpec(
            "check_availability",
            "Free slots on a day",
            {"type": "object", "properties": {"date": {"type": "string"}}, "required": ["date"]},
        ),
    ),
)
E = TypeVar("E")


class Collected:
    """Every event the provider gives, read by one task as the session would."""

    def __init__(self, provider: OpenAIRealtimeProvider) -> None:
        self.events: list[ProviderEvent] = []
        self.task = asyncio.create_task(self._run(provider))

    async def _run(self, provider: OpenAIRealtimeProvider) -> None:
        async for event in provider.events():
            self.events.append(event)

    def of(self, kind: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, kind)]

    async def wait(self, kind: type[E], count: int = 1) -> list[E]:
        async def enough() -> bool:
            return len(self.of(kind)) >= count

        await wait_until(enough, timeout=5)
        return self.of(kind)


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtime]:
    async with FakeRealtime(api_key=KEY) as server:
        yield server


@contextlib.asynccontextmanager
async def running(
    fake: FakeRealtime, config: SessionConfig = CONFIG
) -> AsyncIterator[tuple[OpenAIRealtimeProvider, Collected]]:
    provider = OpenAIRealtimeProvider(fake.url, KEY, "gpt-realtime", connect_timeout=5)
    await provider.start(config)
    collected = Collected(provider)
    try:
        yield provider, collected
    finally:
        await provider.close()
        await asyncio.wait_for(collected.task, 5)


async def test_greeting_configures_a_phone_session_then_speaks_first(fake: FakeRealtime) -> None:
    async with running(fake) as (_, events):
        done = await events.wait(ResponseDone)
        [update] = fake.of_type("session.update")
        assert [e["type"] for e in fake.received[:2]] == ["session.update", "response.create"]
        assert fake.models == ["gpt-realtime"]
        session = update["session"]
        assert session["type"] == "realtime"
        audio = session["audio"]
        assert audio["input"]["format"] == {"type": "audio/pcmu"}
        assert audio["output"]["format"] == {"type": "audio/pcmu"}
        assert audio["output"]["voice"] == "marin"
        assert audio["input"]["turn_detection"]["type"] == "server_vad"
        assert audio["input"]["transcription"]["model"]
        assert audio["input"]["transcription"]["language"] == "en"
        assert session["tools"] == [
            {
                "type": "function",
                "name": "check_availability",
                "description": "Free slots on a day",
                "parameters": dict(CONFIG.tools[0].parameters),
            }
        ]
        for part in (CONFIG.business_name, CONFIG.greeting, CONFIG.instructions):
            assert part in session["instructions"]
        assert fake.errors_sent == []  # the real server would have refused a malformed session

        greeting = fake.responses[0]
        assert done == [ResponseDone(greeting)]
        audio_events = events.of(AgentAudio)
        assert [a.response_id for a in audio_events] == [greeting] * fake.deltas
        assert [a.mulaw for a in audio_events] == [fake.audio] * fake.deltas  # byte for byte, no resampling
        assert events.of(AgentTranscript) == [AgentTranscript(greeting, fake.transcript)]


async def test_odd_sized_deltas_are_passed_on_in_whole_frames(fake: FakeRealtime) -> None:
    fake.audio, fake.deltas = bytes(range(100)), 5
    async with running(fake) as (_, events):
        await events.wait(ResponseDone)
        chunks = [a.mulaw for a in events.of(AgentAudio)]
        assert b"".join(chunks) == fake.audio * 5
        assert all(len(chunk) % 160 == 0 for chunk in chunks[:-1])
        assert [len(chunk) for chunk in chunks] == [160, 160, 160, 20]


async def test_caller_turn_audio_passes_through_and_transcripts_are_mapped(fake: FakeRealtime) -> None:
    frames = [bytes((i * 7 + j) % 256 for j in range(160)) for i in range(12)]
    async with running(fake) as (provider, events):
        for frame in frames:
            await provider.send_audio(frame)
        appends = await fake.wait_for("input_audio_buffer.append", count=len(frames))
        assert [base64.b64decode(a["audio"]) for a in appends] == frames
        assert bytes(fake.input_audio) == b"".join(frames)

        await fake.inject(
            {"type": "input_audio_buffer.speech_started", "audio_start_ms": 40, "item_id": "item_u1"},
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 220, "item_id": "item_u1"},
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": "item_u1",
                "content_index": 0,
                "transcript": "I'd like a haircut tomorrow.",
            },
        )
        await events.wait(CallerTranscript)
        assert len(events.of(SpeechStarted)) == 1
        assert len(events.of(SpeechStopped)) == 1
        assert events.of(CallerTranscript) == [CallerTranscript("I'd like a haircut tomorrow.")]
        order = [type(e) for e in events.events if not isinstance(e, (AgentAudio, AgentTranscript))]
        assert order[-3:] == [SpeechStarted, SpeechStopped, CallerTranscript]

        await provider.send_dtmf("5")
        [item] = await fake.wait_for("conversation.item.create")
        assert item["item"]["role"] == "user"
        assert "5" in item["item"]["content"][0]["text"]
        assert fake.errors_sent == []


async def test_barge_in_cancels_and_truncates_the_audio_being_played(fake: FakeRealtime) -> None:
    fake.hold_responses = True  # the model is still generating when the caller talks
    async with running(fake) as (provider, events):
        await events.wait(AgentAudio, count=fake.deltas)
        greeting = fake.responses[0]
        await provider.interrupt(greeting, 120)
        [cancel] = await fake.wait_for("response.cancel")
        [truncate] = await fake.wait_for("conversation.item.truncate")
        assert cancel["response_id"] == greeting
        assert truncate["item_id"] == fake.audio_items[greeting]
        assert (truncate["content_index"], truncate["audio_end_ms"]) == (0, 120)
        assert await events.wait(ResponseDone) == [ResponseDone(greeting)]  # the cancelled response ends
        assert fake.errors_sent == []


async def test_barge_in_after_the_response_finished_only_truncates(fake: FakeRealtime) -> None:
    async with running(fake) as (provider, events):
        await events.wait(ResponseDone)
        greeting = fake.responses[0]
        await provider.interrupt(greeting, 250)
        [truncate] = await fake.wait_for("conversation.item.truncate")
        assert (truncate["item_id"], truncate["audio_end_ms"]) == (fake.audio_items[greeting], 250)
        assert fake.of_type("response.cancel") == []  # nothing left to cancel: no error from the server
        await provider.interrupt(greeting, 10_000)  # everything was heard: nothing to cut
        await provider.send_audio(bytes(160))
        await fake.wait_for("input_audio_buffer.append")
        assert len(fake.of_type("conversation.item.truncate")) == 1
        assert fake.errors_sent == []


class Twilio:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    def marks(self) -> list[str]:
        return [m["mark"]["name"] for m in self.sent if m["event"] == "mark"]


class Turns:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, speaker: str, text: str, offset_ms: int) -> None:
        self.items.append((speaker, text))


async def test_call_session_barge_in_cuts_the_response_where_twilio_played_it(fake: FakeRealtime) -> None:
    fake.hold_responses = True
    stream = "MZ" + "3" * 32
    provider = OpenAIRealtimeProvider(fake.url, KEY, "gpt-realtime", connect_timeout=5)
    twilio, turns = Twilio(), Turns()
    session = CallSession(
        call_sid=CONFIG.call_sid,
        stream_sid=stream,
        send=twilio.send,
        provider=provider,
        turns=turns,
        counters=StreamCounters(),
    )
    await provider.start(CONFIG)
    relay = asyncio.create_task(session.run_provider())
    try:

        async def all_marks_sent() -> bool:
            return len(twilio.marks()) == fake.deltas

        await wait_until(all_marks_sent, timeout=5)
        greeting = fake.responses[0]
        assert twilio.marks() == [f"{greeting}:100", f"{greeting}:200", f"{greeting}:300"]
        await session.on_twilio(Mark(stream, None, f"{greeting}:100"))  # the first 100 ms were heard
        frame = bytes(range(160))
        await session.on_twilio(Media(stream, 1, "inbound", 1, 0, frame))
        await session.on_twilio(Dtmf(stream, 2, "inbound", "1"))
        await fake.inject({"type": "input_audio_buffer.speech_started", "audio_start_ms": 20, "item_id": "u"})

        [truncate] = await fake.wait_for("conversation.item.truncate")
        assert (truncate["item_id"], truncate["audio_end_ms"]) == (fake.audio_items[greeting], 100)
        assert [c["response_id"] for c in fake.of_type("response.cancel")] == [greeting]
        assert twilio.sent[-1]["event"] == "clear"
        assert session.metrics.barge_ins == 1
        assert bytes(fake.input_audio) == frame
        assert fake.errors_sent == []
    finally:
        await provider.close()
        assert await asyncio.wait_for(relay, 5) == "closed"


async def test_tool_call_round_trip(fake: FakeRealtime) -> None:
    async with running(fake) as (provider, events):
        await events.wait(ResponseDone)
        await fake.call_function("check_availability", '{"date": "2025-01-10"}', call_id="call_42")
        [call] = await events.wait(ToolCall)
        assert call == ToolCall("call_42", "check_availability", {"date": "2025-01-10"})

        result = {"slots": ["10:00", "14:30"], "timezone": "Asia/Jerusalem"}
        await provider.send_tool_result("call_42", result)
        [created] = await fake.wait_for("conversation.item.create")
        item = created["item"]
        assert (item["type"], item["call_id"]) == ("function_call_output", "call_42")
        assert json.loads(item["output"]) == result
        await fake.wait_for("response.create", count=2)
        assert [e["type"] for e in fake.received][-2:] == ["conversation.item.create", "response.create"]
        answer = (await events.wait(ResponseDone, count=3))[-1].response_id
        assert answer == fake.responses[-1]
        assert answer != fake.responses[0]
        assert [a.mulaw for a in events.of(AgentAudio) if a.response_id == answer] == [fake.audio] * 3
        assert fake.errors_sent == []


async def test_tool_call_with_invalid_json_arguments_gets_empty_arguments(fake: FakeRealtime) -> None:
    async with running(fake) as (_, events):
        with capture_logs() as logs:
            await fake.call_function("check_availability", '{"date": "2025-01', call_id="call_7")
            [call] = await events.wait(ToolCall)
        assert call == ToolCall("call_7", "check_availability", {})
        [bad] = [entry for entry in logs if entry["event"] == "realtime.bad_tool_arguments"]
        assert bad["log_level"] == "debug"
        assert bad["call_id"] == "call_7"


def error_event(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": "invalid_request_error", "code": code, "message": message}}


async def test_server_errors_are_warned_once_per_kind_and_the_session_continues(fake: FakeRealtime) -> None:
    async with running(fake) as (provider, events):
        await events.wait(ResponseDone)
        with capture_logs() as logs:
            await fake.inject(
                error_event("invalid_value", "Invalid value: 'x'."),
                error_event("invalid_value", "Invalid value: 'y'."),
                error_event("rate_limit_exceeded", "Slow down."),
                error_event("response_cancel_not_active", "Cancellation failed: no active response found"),
                {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u"},
            )
            await events.wait(SpeechStarted)  # events after the errors still arrive
        warnings = [e for e in logs if e["event"] == "realtime.error" and e["log_level"] == "warning"]
        assert sorted(w["key"] for w in warnings) == [
            "invalid_request_error:invalid_value",
            "invalid_request_error:rate_limit_exceeded",
        ]
        assert not any(e["log_level"] == "error" for e in logs)
        await provider.send_audio(bytes(160))
        await fake.wait_for("input_audio_buffer.append")
        assert events.of(ProviderClosed) == []


@pytest.mark.parametrize(("code", "reason"), [(1011, "provider_closed_1011"), (1000, "provider_closed")])
async def test_server_closing_the_socket_ends_the_provider(
    fake: FakeRealtime, code: int, reason: str
) -> None:
    async with running(fake) as (provider, events):
        await events.wait(ResponseDone)
        await fake.close_connections(code, "server going away")
        await asyncio.wait_for(events.task, 5)  # events() ends after the close
        assert events.of(ProviderClosed) == [ProviderClosed(reason)]
        assert isinstance(events.events[-1], ProviderClosed)
        await provider.send_audio(bytes(160))  # the inbound task may still send: dropped, not raised
        await provider.send_tool_result("call_1", {"ok": True})


async def test_close_ends_the_events_once(fake: FakeRealtime) -> None:
    provider = OpenAIRealtimeProvider(fake.url, KEY, "gpt-realtime", connect_timeout=5)
    await provider.start(CONFIG)
    events = Collected(provider)
    await events.wait(ResponseDone)
    await provider.close()
    await provider.close()
    await asyncio.wait_for(events.task, 5)
    assert events.of(ProviderClosed) == [ProviderClosed("closed")]


async def test_refused_or_unreachable_server_raises_without_the_key(fake: FakeRealtime) -> None:
    wrong = "sk-proj-WRONGkeyWRONGkey0001"
    with pytest.raises(ProviderUnavailable) as refused:
        await OpenAIRealtimeProvider(fake.url, wrong, "gpt-realtime", connect_timeout=5).start(CONFIG)
    assert "401" in str(refused.value)
    assert wrong not in str(refused.value)
    assert refused.value.__suppress_context__
    assert fake.refused == 1
    dead = f"ws://127.0.0.1:{closed_port()}/v1/realtime"
    with pytest.raises(ProviderUnavailable) as unreachable:
        await OpenAIRealtimeProvider(dead, KEY, "gpt-realtime", connect_timeout=2).start(CONFIG)
    assert KEY not in str(unreachable.value)


@pytest.fixture
def debug_log_stream() -> Iterator[io.StringIO]:
    """Every log line of the process at DEBUG, libraries (``websockets``) included, as JSON."""
    stream = io.StringIO()
    configure_logging("calls", "DEBUG", LogFormat.JSON, stream=stream, library_level="DEBUG")
    clear_context()
    try:
        yield stream
    finally:
        clear_context()
        structlog.reset_defaults()
        configure_logging("tests", "WARNING", LogFormat.CONSOLE, stream=sys.stderr)


async def test_the_api_key_never_appears_in_logs(fake: FakeRealtime, debug_log_stream: io.StringIO) -> None:
    fake.hold_responses = True
    async with running(fake) as (provider, events):
        await events.wait(AgentAudio)
        await provider.interrupt(fake.responses[0], 40)
        await fake.call_function("check_availability", "not json", call_id="call_9")
        await events.wait(ToolCall)
        await fake.inject(error_event("invalid_api_key", f"Incorrect API key provided: {KEY}."))
        await provider.send_tool_result("call_9", {"ok": False})
        await fake.wait_for("response.create", count=2)
        await fake.close_connections(1011, "boom")
        await asyncio.wait_for(events.task, 5)
    with pytest.raises(ProviderUnavailable):
        await OpenAIRealtimeProvider(fake.url, KEY + "x", "gpt-realtime", connect_timeout=5).start(CONFIG)

    text = debug_log_stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    handshake = [line["event"] for line in lines if line.get("logger") == "websockets.client"]
    assert any(event.startswith("> GET /v1/realtime") for event in handshake)  # library DEBUG was captured
    assert "> Authorization: Bearer <redacted>" in handshake
    assert {"realtime.bad_tool_arguments", "realtime.error", "realtime.closed", "realtime.refused"} <= {
        line["event"] for line in lines
    }
    assert KEY not in text
    assert KEY[8:] not in text  # nor the part after the prefix


def test_url_and_settings() -> None:
    assert realtime_url("wss://api.openai.com/v1/realtime", "gpt-realtime") == (
        "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    )
    assert (
        realtime_url("ws://127.0.0.1:9/v1/realtime?x=1&model=old", "m")
        == "ws://127.0.0.1:9/v1/realtime?x=1&model=m"
    )
    defaults = build_settings(CallsSettings, app_env="test")
    assert defaults.openai_realtime_url == "wss://api.openai.com/v1/realtime"
    assert defaults.openai_realtime_model == "gpt-realtime"
    assert OpenAIRealtimeProvider.from_settings(build_settings(CallsSettings, openai_api_key="")) is None
    settings = build_settings(
        CallsSettings, openai_api_key=KEY, openai_realtime_url="ws://127.0.0.1:9/v1/realtime"
    )
    provider = OpenAIRealtimeProvider.from_settings(settings)
    assert provider is not None
    assert KEY not in repr(provider)
    assert KEY not in repr(settings)
    with pytest.raises(ConfigError) as bad:
        build_settings(CallsSettings, openai_realtime_url="https://api.openai.com/v1/realtime")
    assert "OPENAI_REALTIME_URL" in str(bad.value)
