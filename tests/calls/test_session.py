"""The call session between Twilio's stream and a (scripted) provider: agent audio goes out as 20 ms
frames with marks, echoed marks tell what the caller heard, barge-in stops and clears at once and cuts
the response where it was heard, caller audio and DTMF pass through untouched, turns are recorded and
tool failures become something the agent can say."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from prosaas_calls.media.twilio_protocol import Dtmf, Mark, Media, StreamCounters
from prosaas_calls.providers.base import (
    AgentAudio,
    AgentTranscript,
    CallerTranscript,
    ProviderClosed,
    ResponseDone,
    SessionConfig,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
)
from prosaas_calls.providers.scripted import ScriptedProvider
from prosaas_calls.session import TOOL_UNAVAILABLE, CallSession
from tests.support import wait_until

STREAM = "MZ" + "5" * 32
ONE_SECOND = bytes([0x7F]) * 8000  # 1 s of µ-law


class Turns:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, speaker: str, text: str, offset_ms: int) -> None:
        assert offset_ms >= 0
        self.items.append((speaker, text))


class Twilio:
    """What the session sent to Twilio, decoded."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    def events(self) -> list[str]:
        return [m["event"] for m in self.sent]

    def marks(self) -> list[str]:
        return [m["mark"]["name"] for m in self.sent if m["event"] == "mark"]


def session_with(provider: ScriptedProvider, **kwargs: Any) -> tuple[CallSession, Twilio, Turns]:
    twilio, turns = Twilio(), Turns()
    session = CallSession(
        call_sid="CA" + "5" * 32,
        stream_sid=STREAM,
        send=twilio.send,
        provider=provider,
        turns=turns,
        counters=StreamCounters(),
        **kwargs,
    )
    return session, twilio, turns


async def until(condition: Callable[[], bool]) -> None:
    async def check() -> bool:
        return condition()

    await wait_until(check, timeout=5, interval=0.001)


async def run_until_closed(session: CallSession, provider: ScriptedProvider) -> str:
    provider.emit(ProviderClosed("test over"))
    return await asyncio.wait_for(session.run_provider(), 5)


async def test_the_greeting_goes_out_in_20_ms_frames_followed_by_a_mark() -> None:
    provider = ScriptedProvider(greeting_audio=ONE_SECOND)
    session, twilio, turns = session_with(provider)
    await provider.start(SessionConfig("CA1", 1, "Dental", "Hello, Dental here!", ""))

    assert await run_until_closed(session, provider) == "test over"

    assert twilio.events() == ["media"] * 50 + ["mark"]
    assert all(m["streamSid"] == STREAM for m in twilio.sent)
    assert twilio.marks() == ["greeting:1000"]
    assert session.counters.frames_out == 50
    assert turns.items == [("agent", "Hello, Dental here!")]


async def test_barge_in_clears_at_once_and_cuts_the_response_where_it_was_heard() -> None:
    provider = ScriptedProvider()
    session, twilio, _ = session_with(provider)
    provider.emit(AgentAudio("r1", ONE_SECOND[:4000]), AgentAudio("r1", ONE_SECOND[:4000]))
    task = asyncio.create_task(session.run_provider())
    await until(lambda: len(twilio.marks()) == 2)
    await session.on_twilio(Mark(STREAM, None, "r1:500"))  # the caller heard the first half second

    provider.emit(SpeechStarted(), AgentAudio("r1", ONE_SECOND[:1600]))  # late audio of the cut response
    await until(lambda: bool(provider.interrupts))
    await session.on_twilio(Mark(STREAM, None, "r1:1000"))  # flushed by the clear: not heard
    provider.emit(AgentAudio("r2", ONE_SECOND[:800]))
    provider.emit(ProviderClosed("done"))
    await asyncio.wait_for(task, 5)

    after_clear = twilio.events()[twilio.events().index("clear") + 1 :]
    assert twilio.events().count("clear") == 1
    assert after_clear == ["media"] * 5 + ["mark"]  # r2 only: nothing more of r1
    assert provider.interrupts == [("r1", 500)]
    assert session.metrics.barge_ins == 1
    assert twilio.marks()[-1] == "r2:100"


async def test_speech_while_the_agent_is_silent_is_not_a_barge_in() -> None:
    provider = ScriptedProvider()
    session, twilio, _ = session_with(provider)
    provider.emit(AgentAudio("r1", ONE_SECOND[:1600]))
    task = asyncio.create_task(session.run_provider())
    await until(lambda: bool(twilio.marks()))
    await session.on_twilio(Mark(STREAM, None, "r1:200"))  # all of it was heard
    provider.emit(SpeechStarted(), ProviderClosed("done"))
    await asyncio.wait_for(task, 5)

    assert "clear" not in twilio.events()
    assert provider.interrupts == []


async def test_caller_audio_and_digits_pass_through_untouched_and_turns_are_kept() -> None:
    provider = ScriptedProvider()
    session, _, turns = session_with(provider)
    frame = bytes(range(160))

    await session.on_twilio(Media(STREAM, 3, "inbound", 1, 0, frame))
    await session.on_twilio(Dtmf(STREAM, 4, "inbound_track", "7"))
    provider.emit(CallerTranscript("I'd like a check-up"), AgentTranscript("r1", "Sure, when?"))
    await run_until_closed(session, provider)

    assert bytes(provider.received_audio) == frame
    assert provider.dtmf == ["7"]
    assert turns.items == [("caller", "I'd like a check-up"), ("agent", "Sure, when?")]


@pytest.mark.parametrize("outcome", ["ok", "raises"])
async def test_tool_results_and_failures_go_back_to_the_provider(outcome: str) -> None:
    async def tools(name: str, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
        if outcome == "raises":
            raise RuntimeError("database exploded")
        return {"slots": ["2026-12-01T15:00:00Z"], "asked": dict(arguments)}

    provider = ScriptedProvider()
    session, _, _ = session_with(provider, tools=tools)
    provider.emit(ToolCall("c1", "check_availability", {"date": "2026-12-01"}))
    await run_until_closed(session, provider)

    [(call_id, output)] = provider.tool_results
    assert call_id == "c1"
    if outcome == "ok":
        assert output == {"slots": ["2026-12-01T15:00:00Z"], "asked": {"date": "2026-12-01"}}
    else:
        assert output == {"error": TOOL_UNAVAILABLE}


async def test_after_end_call_the_session_ends_once_the_goodbye_was_heard() -> None:
    provider = ScriptedProvider()
    hang_up: str | None = None
    session, twilio, _ = session_with(provider, requested_end=lambda: hang_up)
    task = asyncio.create_task(session.run_provider())
    hang_up = "agent_ended"  # the agent called end_call
    provider.emit(AgentAudio("bye", ONE_SECOND[:3200]), ResponseDone("bye"))  # 400 ms goodbye
    await until(lambda: bool(twilio.marks()))
    assert not task.done()  # sent, not yet heard
    await session.on_twilio(Mark(STREAM, None, "bye:400"))

    assert await asyncio.wait_for(task, 5) == "agent_ended"
    assert "clear" not in twilio.events()


async def test_first_audio_and_response_latency_are_measured() -> None:
    ticks = iter([0.0, 0.25, 1.0, 1.4])  # started, first audio, caller stopped, next answer
    provider = ScriptedProvider()
    session, _, _ = session_with(provider, clock=lambda: next(ticks))
    provider.emit(AgentAudio("r1", ONE_SECOND[:160]), SpeechStopped(), AgentAudio("r2", ONE_SECOND[:160]))
    await run_until_closed(session, provider)

    assert session.metrics.first_audio_ms == 250.0
    assert [round(ms) for ms in session.metrics.response_latency_ms] == [400]
