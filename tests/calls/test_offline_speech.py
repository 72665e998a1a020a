"""The offline voice stack on real audio: espeak-ng speaks, pocketsphinx hears it through the phone
path (8 kHz µ-law), and the offline provider holds a whole booking conversation with the session's
tool protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from prosaas_calls.audio import PHONE_RATE, ulaw_silence, ulaw_to_pcm16, wav_to_ulaw
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
)
from prosaas_calls.providers.offline.grammar import NAME
from prosaas_calls.providers.offline.provider import OfflineProvider, decoder_pool
from prosaas_calls.speech import tts
from prosaas_calls.speech.asr import Recognizer, SpeechBegan, Utterance
from prosaas_calls.speech.tts import synthesize
from tests.support import wait_until

CONFIG = SessionConfig(
    call_sid="CA" + "6" * 32,
    business_id=1,
    business_name="Bright Salon",
    greeting="Hello, thank you for calling Bright Salon. How can I help you today?",
    instructions="",
)
SLOTS = [
    {"start": "2026-11-30T09:00:00+00:00", "spoken": "Monday at 9"},
    {"start": "2026-11-30T09:30:00+00:00", "spoken": "Monday at 9 30"},
    {"start": "2026-11-30T10:00:00+00:00", "spoken": "Monday at 10"},
]


async def caller_says(text: str) -> bytes:
    """What the caller's line carries: a short pause, the words, then enough silence to end the turn."""
    return ulaw_silence(300) + await synthesize(text) + ulaw_silence(900)


async def test_synthesized_speech_is_phone_audio_of_about_the_right_length() -> None:
    audio = await synthesize("Thank you for calling.")
    seconds = len(audio) / PHONE_RATE
    assert 0.8 < seconds < 3.0
    pcm = ulaw_to_pcm16(audio)
    assert (
        max(abs(int.from_bytes(pcm[i : i + 2], "little", signed=True)) for i in range(0, len(pcm), 2)) > 1000
    )


def test_wav_files_of_other_rates_and_stereo_become_phone_audio() -> None:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(16000 * 4))  # one second of stereo silence
    assert len(wav_to_ulaw(out.getvalue())) == pytest.approx(8000, abs=10)


async def test_the_recogniser_hears_an_answer_on_the_phone_line() -> None:
    recognizer = Recognizer(decoder_pool())
    recognizer.listen_for(NAME)
    audio = await caller_says("Hi, I am David Brown")
    events = [event for i in range(0, len(audio), 160) for event in recognizer.feed(audio[i : i + 160])]
    recognizer.close()
    assert events == [SpeechBegan(), Utterance("hi i am david brown")]


async def test_silence_is_no_speech() -> None:
    recognizer = Recognizer(decoder_pool())
    silence = ulaw_silence(3000)
    assert [e for i in range(0, len(silence), 160) for e in recognizer.feed(silence[i : i + 160])] == []
    recognizer.close()


class Conversation:
    """Runs the provider's events, answers its tool calls like the session does, and keeps the log."""

    def __init__(self, provider: OfflineProvider, results: Mapping[str, Mapping[str, Any]]) -> None:
        self.provider = provider
        self.results = results
        self.log: list[ProviderEvent] = []
        self.tools: list[tuple[str, Mapping[str, Any]]] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.provider.events():
            self.log.append(event)
            if isinstance(event, ToolCall):
                self.tools.append((event.name, dict(event.arguments)))
                await self.provider.send_tool_result(
                    event.call_id, self.results.get(event.name, {"ok": True})
                )

    def agent_lines(self) -> list[str]:
        return [event.text for event in self.log if isinstance(event, AgentTranscript)]

    async def responses(self, count: int) -> None:
        async def enough() -> bool:
            return sum(isinstance(event, ResponseDone) for event in self.log) >= count

        await wait_until(enough, timeout=20, interval=0.01)

    async def say(self, text: str) -> None:
        audio = await caller_says(text)
        for i in range(0, len(audio), 160):
            await self.provider.send_audio(audio[i : i + 160])

    async def stop(self) -> None:
        await self.provider.close()
        self._task.cancel()


@pytest.fixture
async def conversation() -> AsyncIterator[Conversation]:
    provider = OfflineProvider()
    await provider.start(CONFIG)
    talk = Conversation(
        provider,
        {
            "check_availability": {"slots": SLOTS},
            "book_appointment": {"booked": True, "start": SLOTS[1]["start"], "spoken": "Monday at 9 30"},
        },
    )
    yield talk
    await talk.stop()


async def test_a_spoken_booking_conversation(conversation: Conversation) -> None:
    await conversation.responses(1)
    assert conversation.agent_lines() == [CONFIG.greeting]
    assert any(isinstance(e, AgentAudio) and len(e.mulaw) > PHONE_RATE for e in conversation.log)

    await conversation.say("Hello, I'd like to book a haircut")
    await conversation.responses(2)
    await conversation.say("Hi, I am David Brown")
    await conversation.responses(3)
    assert conversation.agent_lines()[-1].startswith(
        "Thank you, David, I can offer Monday at 9, Monday at 9 30"
    )
    await conversation.say("The second one")
    await conversation.responses(4)
    await conversation.say("No thanks, goodbye")
    await conversation.responses(5)

    assert conversation.tools == [
        ("save_lead_info", {"reason": "haircut"}),
        ("save_lead_info", {"name": "David Brown"}),
        ("check_availability", {}),
        ("book_appointment", {"start": SLOTS[1]["start"], "name": "David Brown"}),
        ("end_call", {}),
    ]
    assert conversation.agent_lines()[-2:] == [
        "You're booked for Monday at 9 30. Is there anything else?",
        "Thank you for calling Bright Salon. Goodbye!",
    ]
    caller = [e.text for e in conversation.log if isinstance(e, CallerTranscript)]
    assert caller[0] == "hello i would like to book a haircut"
    assert len(caller) == 4
    # Every caller turn is framed by speech started/stopped (barge-in and response latency use them).
    assert sum(isinstance(e, SpeechStarted) for e in conversation.log) == 4
    assert sum(isinstance(e, SpeechStopped) for e in conversation.log) == 4


async def test_keypad_choice_books_the_offered_time(conversation: Conversation) -> None:
    await conversation.responses(1)
    await conversation.say("Hello, I'd like to book a haircut")
    await conversation.responses(2)
    await conversation.say("Hi, I am David Brown")
    await conversation.responses(3)
    await conversation.provider.send_dtmf("1")
    await conversation.responses(4)
    assert conversation.tools[-1] == ("book_appointment", {"start": SLOTS[0]["start"], "name": "David Brown"})


async def test_without_espeak_the_provider_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tts, "ESPEAK", "espeak-ng-not-installed")
    assert not OfflineProvider.available()
    with pytest.raises(ProviderUnavailable, match="espeak-ng"):
        await OfflineProvider().start(CONFIG)


async def test_speech_failing_mid_call_closes_the_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = OfflineProvider()
    await provider.start(CONFIG)  # its greeting is synthesised once this test yields
    monkeypatch.setattr(tts, "ESPEAK", "espeak-ng-not-installed")
    await provider.prompt("Are you still there?")
    events = [event async for event in provider.events()]
    await provider.close()
    assert isinstance(events[-1], ProviderClosed)
    assert events[-1].reason == "provider_error"
