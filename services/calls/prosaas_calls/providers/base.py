"""The interface between a call session and the voice model behind it.

A provider takes caller audio (µ-law 8 kHz frames, passed through untouched) and DTMF digits in, and
gives events out: agent audio and transcripts, caller transcripts, speech started/stopped (server VAD),
tool calls and the end of a response. Nothing here assumes a particular vendor: OpenAI Realtime, the
offline recogniser + synthesiser and the scripted provider of the tests all fit it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=dict, hash=False)  # JSON schema


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What a provider needs to run one call in the business's voice."""

    call_sid: str
    business_id: int
    business_name: str
    greeting: str
    instructions: str
    voice: str = "alloy"
    language: str = "en"
    tools: tuple[ToolSpec, ...] = ()
    ai_provider: str = "auto"  # the business's choice: auto, openai or offline


@dataclass(frozen=True, slots=True)
class AgentAudio:
    response_id: str
    mulaw: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AgentTranscript:
    response_id: str
    text: str


@dataclass(frozen=True, slots=True)
class CallerTranscript:
    text: str


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started speaking (barge-in when the agent is talking)."""


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """The caller stopped speaking; the provider will answer."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    call_id: str
    name: str
    arguments: Mapping[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str


@dataclass(frozen=True, slots=True)
class ProviderClosed:
    reason: str


ProviderEvent: TypeAlias = (
    AgentAudio
    | AgentTranscript
    | CallerTranscript
    | SpeechStarted
    | SpeechStopped
    | ToolCall
    | ResponseDone
    | ProviderClosed
)


class ProviderUnavailable(Exception):
    """The provider's session could not be opened (refused, unreachable, timed out). Its text never
    carries a secret."""


class VoiceProvider(Protocol):
    name: str

    async def start(self, config: SessionConfig) -> None:
        """Open the session; the provider speaks the greeting first."""
        ...

    async def send_audio(self, mulaw: bytes) -> None: ...

    async def send_dtmf(self, digit: str) -> None: ...

    async def send_tool_result(self, call_id: str, output: Mapping[str, Any]) -> None:
        """The result of a :class:`ToolCall`; the provider continues the response with it."""
        ...

    async def interrupt(self, response_id: str, played_ms: int) -> None:
        """Barge-in: stop ``response_id`` and forget what the caller did not hear (after ``played_ms``)."""
        ...

    async def prompt(self, text: str) -> None:
        """Say ``text`` (or words to that effect) now as a new response: the session's silence prompts
        and time-limit goodbye."""
        ...

    def events(self) -> AsyncIterator[ProviderEvent]: ...

    async def close(self) -> None: ...
