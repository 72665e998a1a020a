"""A provider whose events are scripted by its owner: the tests' stand-in for a voice model.

Whoever drives it puts events in with :meth:`ScriptedProvider.emit` (agent audio, transcripts, speech
started, tool calls, …) and reads back what the session sent it (:attr:`received_audio`, :attr:`dtmf`,
:attr:`interrupts`, :attr:`tool_results`). It speaks the greeting on :meth:`start` when given audio for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from prosaas_calls.providers.base import (
    AgentAudio,
    AgentTranscript,
    ProviderClosed,
    ProviderEvent,
    ResponseDone,
    SessionConfig,
)


class ScriptedProvider:
    name = "scripted"

    def __init__(self, greeting_audio: bytes = b"") -> None:
        self.greeting_audio = greeting_audio
        self.config: SessionConfig | None = None
        self.received_audio = bytearray()
        self.frames_received = 0
        self.dtmf: list[str] = []
        self.interrupts: list[tuple[str, int]] = []
        self.prompts: list[str] = []
        self.prompt_audio = b""  # when set, a prompt is answered as a response with this audio
        self.tool_results: list[tuple[str, Mapping[str, Any]]] = []
        self.closed = False
        self._events: asyncio.Queue[ProviderEvent | None] = asyncio.Queue()

    def emit(self, *events: ProviderEvent) -> None:
        for event in events:
            self._events.put_nowait(event)

    async def start(self, config: SessionConfig) -> None:
        self.config = config
        if self.greeting_audio:
            self.emit(
                AgentAudio("greeting", self.greeting_audio),
                AgentTranscript("greeting", config.greeting),
                ResponseDone("greeting"),
            )

    async def send_audio(self, mulaw: bytes) -> None:
        self.received_audio += mulaw
        self.frames_received += 1

    async def send_dtmf(self, digit: str) -> None:
        self.dtmf.append(digit)

    async def send_tool_result(self, call_id: str, output: Mapping[str, Any]) -> None:
        self.tool_results.append((call_id, output))

    async def interrupt(self, response_id: str, played_ms: int) -> None:
        self.interrupts.append((response_id, played_ms))

    async def prompt(self, text: str) -> None:
        self.prompts.append(text)
        if self.prompt_audio:
            response_id = f"prompt-{len(self.prompts)}"
            self.emit(
                AgentAudio(response_id, self.prompt_audio),
                AgentTranscript(response_id, text),
                ResponseDone(response_id),
            )

    async def events(self) -> AsyncIterator[ProviderEvent]:
        while (event := await self._events.get()) is not None:
            yield event
            if isinstance(event, ProviderClosed):
                return

    async def close(self) -> None:
        self.closed = True
        self._events.put_nowait(None)
