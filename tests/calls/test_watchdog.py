"""The call's clock, with a scripted provider and a Twilio that plays audio at once: silence prompts
after the business's timeout, a goodbye after the last unanswered one, the count starting over when
the caller speaks, the time-limit goodbye, and an end forced when a goodbye never comes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from prosaas_calls import watchdog
from prosaas_calls.media.twilio_protocol import Mark, StreamCounters
from prosaas_calls.providers.base import AgentAudio, ResponseDone, SpeechStarted, SpeechStopped
from prosaas_calls.providers.scripted import ScriptedProvider
from prosaas_calls.session import CallSession
from prosaas_calls.watchdog import SILENCE_GOODBYE, SILENCE_PROMPT, TIME_LIMIT_GOODBYE, CallLimits, watch
from tests.support import wait_until

STREAM = "MZ" + "7" * 32
AUDIO = bytes([0x7F]) * 800  # 100 ms


class NoTurns:
    def add(self, speaker: str, text: str, offset_ms: int) -> None:
        pass


def call(provider: ScriptedProvider) -> CallSession:
    """A session whose Twilio plays everything at once: each mark comes straight back."""
    session: CallSession

    async def send(text: str) -> None:
        message: dict[str, Any] = json.loads(text)
        if message["event"] == "mark":
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(session.on_twilio(Mark(STREAM, None, message["mark"]["name"])))
            )

    session = CallSession(
        call_sid="CA" + "7" * 32,
        stream_sid=STREAM,
        send=send,
        provider=provider,
        turns=NoTurns(),
        counters=StreamCounters(),
    )
    return session


async def run(session: CallSession, provider: ScriptedProvider, limits: CallLimits) -> str:
    """The session and the watchdog as the call runner runs them; how the call ended."""
    tasks = {
        asyncio.create_task(session.run_provider()),
        asyncio.create_task(watch(session, provider, limits)),
    }
    done, pending = await asyncio.wait(tasks, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    assert done, "the call did not end"
    return str(done.pop().result())


def speaking_provider() -> ScriptedProvider:
    provider = ScriptedProvider(greeting_audio=AUDIO)
    provider.prompt_audio = AUDIO
    return provider


async def test_silence_is_prompted_then_the_call_ends_after_the_goodbye() -> None:
    provider = speaking_provider()
    provider.emit(AgentAudio("greeting", AUDIO), ResponseDone("greeting"))
    session = call(provider)
    ended = await run(session, provider, CallLimits(silence_timeout_s=0.05, silence_prompts=2))

    assert ended == "silence"
    assert provider.prompts == [SILENCE_PROMPT, SILENCE_PROMPT, SILENCE_GOODBYE]
    assert session.playback.played_ms == session.playback.sent_ms  # the goodbye was heard first


async def test_the_caller_answering_starts_the_count_again() -> None:
    provider = speaking_provider()
    session = call(provider)
    limits = CallLimits(silence_timeout_s=0.3, silence_prompts=1)
    ending = asyncio.create_task(run(session, provider, limits))
    await wait_until(lambda: _async(len(provider.prompts) == 1), timeout=10, interval=0.005)
    provider.emit(SpeechStarted(), SpeechStopped())  # "yes, I'm here"

    assert await ending == "silence"
    # Without the answer the second prompt would have been the goodbye.
    assert provider.prompts == [SILENCE_PROMPT, SILENCE_PROMPT, SILENCE_GOODBYE]


async def test_the_time_limit_is_said_and_ends_the_call() -> None:
    provider = speaking_provider()
    session = call(provider)
    ended = await run(session, provider, CallLimits(silence_timeout_s=60, max_call_length_s=0.1))
    assert ended == "max_length"
    assert provider.prompts == [TIME_LIMIT_GOODBYE]


async def test_a_goodbye_that_never_comes_still_ends_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchdog, "END_GRACE_S", 0.05)
    provider = ScriptedProvider()  # answers nothing
    session = call(provider)
    ended = await run(session, provider, CallLimits(silence_timeout_s=60, max_call_length_s=0.05))
    assert ended == "max_length"
    assert provider.prompts == [TIME_LIMIT_GOODBYE]


async def _async(value: bool) -> bool:
    return value
