"""The offline provider: the caller heard by pocketsphinx, the agent spoken by espeak-ng, the
conversation run by :class:`~prosaas_calls.providers.offline.dialog.ReceptionistDialog`.

One task per call carries out the dialog's actions in order: ``Say`` synthesises (an asyncio
subprocess) and emits the audio, its transcript and the end of the response; ``UseTool`` emits a
:class:`ToolCall` and waits for the session's result before the dialog goes on; ``Listen`` switches the
recogniser's grammar. Caller audio is recognised in ``send_audio`` (incremental decoding, a few percent
of real time), so the relay never waits for synthesis.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Mapping
from typing import Any

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
from prosaas_calls.providers.offline.dialog import Action, Listen, ReceptionistDialog, Say, UseTool
from prosaas_calls.providers.offline.grammar import build_grammars
from prosaas_calls.speech.asr import DecoderPool, Recognizer, SpeechBegan, Utterance
from prosaas_calls.speech.tts import SpeechUnavailable, espeak_available, synthesize
from prosaas_common.logging import get_logger

log = get_logger("prosaas.calls.offline")

_decoders: DecoderPool | None = None


def decoder_pool() -> DecoderPool:
    """The process's decoders (the model is loaded once, on the first offline call)."""
    global _decoders
    if _decoders is None:
        _decoders = DecoderPool(build_grammars)
    return _decoders


# What the worker task gets: the caller's words, a keypad digit, or a tool's result.
Input = tuple[str, Any]


class OfflineProvider:
    name = "offline"

    def __init__(self, pool: DecoderPool | None = None) -> None:
        self._pool = pool
        self._recognizer: Recognizer | None = None
        self._dialog: ReceptionistDialog | None = None
        self._events: asyncio.Queue[ProviderEvent] = asyncio.Queue()
        self._inputs: asyncio.Queue[Input] = asyncio.Queue()
        self._tool_results: dict[str, asyncio.Future[Mapping[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._worker: asyncio.Task[None] | None = None
        self._interrupted: set[str] = set()
        self._closed = False

    @staticmethod
    def available() -> bool:
        return espeak_available()

    async def start(self, config: SessionConfig) -> None:
        if not espeak_available():
            raise ProviderUnavailable("espeak-ng is not installed")
        try:
            self._recognizer = Recognizer(self._pool or decoder_pool())
        except RuntimeError as exc:  # pocketsphinx could not load its model
            raise ProviderUnavailable(f"speech recognition unavailable: {exc}") from None
        self._dialog = ReceptionistDialog(business_name=config.business_name, greeting=config.greeting)
        self._worker = asyncio.create_task(self._run(self._dialog.start()), name=f"offline:{config.call_sid}")

    async def send_audio(self, mulaw: bytes) -> None:
        if self._recognizer is None:
            return
        for event in self._recognizer.feed(mulaw):
            if isinstance(event, SpeechBegan):
                self._events.put_nowait(SpeechStarted())
            elif isinstance(event, Utterance):
                self._events.put_nowait(SpeechStopped())
                if event.text:
                    self._events.put_nowait(CallerTranscript(event.text))
                self._inputs.put_nowait(("heard", event.text))

    async def send_dtmf(self, digit: str) -> None:
        self._inputs.put_nowait(("digit", digit))

    async def send_tool_result(self, call_id: str, output: Mapping[str, Any]) -> None:
        future = self._tool_results.pop(call_id, None)
        if future is not None and not future.done():
            future.set_result(output)

    async def interrupt(self, response_id: str, played_ms: int) -> None:
        self._interrupted.add(response_id)

    async def prompt(self, text: str) -> None:
        self._inputs.put_nowait(("say", text))

    async def events(self) -> AsyncIterator[ProviderEvent]:
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, ProviderClosed):
                return

    async def close(self) -> None:
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._recognizer is not None:
            self._recognizer.close()
            self._recognizer = None
        for future in self._tool_results.values():
            future.cancel()

    # the dialog's task ------------------------------------------------------------------------------------
    async def _run(self, actions: list[Action]) -> None:
        dialog = self._dialog
        assert dialog is not None
        try:
            await self._carry_out(actions)
            while True:
                kind, value = await self._inputs.get()
                if kind == "heard":
                    await self._carry_out(dialog.heard(value))
                elif kind == "digit":
                    await self._carry_out(dialog.digit(value))
                elif kind == "say":
                    await self._say(value)
        except SpeechUnavailable as exc:
            log.warning("call.offline_speech_failed", error=str(exc))
            self._events.put_nowait(ProviderClosed("provider_error"))

    async def _carry_out(self, actions: list[Action]) -> None:
        dialog = self._dialog
        assert dialog is not None
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if isinstance(action, Listen):
                if self._recognizer is not None:
                    self._recognizer.listen_for(action.grammar)
            elif isinstance(action, Say):
                await self._say(action.text)
            elif isinstance(action, UseTool):
                output = await self._use_tool(action)
                queue[:0] = dialog.tool_result(action.name, output)

    async def _say(self, text: str) -> None:
        response_id = f"offline-{next(self._ids)}"
        audio = await synthesize(text)
        if response_id not in self._interrupted:
            self._events.put_nowait(AgentAudio(response_id, audio))
        self._events.put_nowait(AgentTranscript(response_id, text))
        self._events.put_nowait(ResponseDone(response_id))

    async def _use_tool(self, action: UseTool) -> Mapping[str, Any]:
        call_id = f"tool-{next(self._ids)}"
        future: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self._tool_results[call_id] = future
        self._events.put_nowait(ToolCall(call_id, action.name, dict(action.arguments)))
        return await future
