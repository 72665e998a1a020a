"""The OpenAI Realtime API (GA protocol) as a :class:`~prosaas_calls.providers.base.VoiceProvider`.

One WebSocket per call to ``{OPENAI_REALTIME_URL}?model=…``. The session is configured for telephone
audio both ways (``audio/pcmu``: Twilio's µ-law passes through untouched), server VAD, caller
transcription and the business's tools; a ``response.create`` right after makes the agent greet first.
One reader task turns server events into provider events; sending is awaited by whoever sends.

Agent audio is handed on in whole 20 ms frames (the remainder of a delta waits for the next one, and is
flushed when the audio item ends): the session pads every chunk to a full frame, and padding each
odd-sized delta would put clicks of silence into the agent's speech.

The API key goes only into the ``Authorization`` header: the handshake's DEBUG lines of ``websockets``
go through :class:`RedactingLogger`, and no exception raised here carries it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

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
from prosaas_calls.settings import CallsSettings
from prosaas_common.logging import RepeatedFailureLog, get_logger

log = get_logger("prosaas.calls.providers.openai")

DEFAULT_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_MODEL = "gpt-realtime"
DEFAULT_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
MULAW_BYTES_PER_MS = 8  # 8 kHz, one byte a sample
FRAME_BYTES = 160  # 20 ms, the session's frame
RESPONSES_KEPT = 16  # audio bookkeeping of the latest responses (a barge-in cuts a recent one)
# A cancel that crosses the response's end on the wire: expected, not worth a warning.
QUIET_ERROR_CODES = frozenset({"response_cancel_not_active"})
NORMAL_CLOSE = 1000


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """The ``websockets`` client logger with the secret replaced in every argument (it logs headers)."""

    def __init__(self, logger: logging.Logger, secret: str) -> None:
        super().__init__(logger, {})
        self._secret = secret

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            msg = self._redact(msg)
            args = tuple(self._redact(arg) for arg in args)
            self.logger.log(level, msg, *args, **kwargs)

    def _redact(self, value: object) -> object:
        if self._secret and isinstance(value, str) and self._secret in value:
            return value.replace(self._secret, "<redacted>")
        return value


@dataclass
class AudioItem:
    item_id: str
    content_index: int = 0
    bytes_: int = 0

    @property
    def ms(self) -> int:
        return self.bytes_ // MULAW_BYTES_PER_MS


@dataclass
class ResponseAudio:
    """One response's audio: its items in order (to cut at a position) and the part of a frame held back."""

    items: list[AudioItem] = field(default_factory=list)
    pending: bytearray = field(default_factory=bytearray)
    done: bool = False

    def item(self, item_id: str, content_index: int = 0) -> AudioItem:
        for item in self.items:
            if item.item_id == item_id:
                return item
        self.items.append(AudioItem(item_id, content_index))
        return self.items[-1]


def realtime_url(base: str, model: str) -> str:
    """``base`` with ``model=`` in its query (other query parameters kept)."""
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "model"] + [("model", model)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def session_instructions(config: SessionConfig) -> str:
    lines = [
        f"You answer the phone for {config.business_name}.",
        f"Speak {config.language} unless the caller speaks another language. Keep answers short: "
        "this is a phone call.",
    ]
    if config.instructions.strip():
        lines.append(config.instructions.strip())
    lines.append(f'Open the call by saying: "{config.greeting}"')
    return "\n".join(lines)


def session_update(config: SessionConfig, transcription_model: str) -> dict[str, Any]:
    """The ``session.update`` of a phone call: µ-law both ways, server VAD, transcription, tools."""
    transcription: dict[str, Any] = {"model": transcription_model}
    language = config.language.split("-")[0].lower()
    if len(language) == 2 and language.isalpha():
        transcription["language"] = language
    return {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "output_modalities": ["audio"],
            "instructions": session_instructions(config),
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "turn_detection": {
                        "type": "server_vad",
                        "create_response": True,
                        "interrupt_response": True,
                    },
                    "transcription": transcription,
                },
                "output": {"format": {"type": "audio/pcmu"}, "voice": config.voice},
            },
            "tools": [
                {
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": dict(tool.parameters) or {"type": "object", "properties": {}},
                }
                for tool in config.tools
            ],
            "tool_choice": "auto",
        },
    }


def close_reason(code: int | None) -> str:
    if code == NORMAL_CLOSE:
        return "provider_closed"
    return f"provider_closed_{code}" if code else "provider_lost"


class OpenAIRealtimeProvider:
    name = "openai"

    def __init__(
        self,
        url: str,
        api_key: str | SecretStr,
        model: str = DEFAULT_MODEL,
        *,
        connect_timeout: float = 10.0,
        transcription_model: str = DEFAULT_TRANSCRIPTION_MODEL,
    ) -> None:
        self._url = realtime_url(url, model)
        self._api_key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self._connect_timeout = connect_timeout
        self._transcription_model = transcription_model
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[ProviderEvent] = asyncio.Queue()
        self._closed_sent = False
        self._closing = False
        self._responses: OrderedDict[str, ResponseAudio] = OrderedDict()
        self._tool_names: dict[str, str] = {}
        self._log: Any = log
        self._failures = RepeatedFailureLog(log)

    def __repr__(self) -> str:
        return f"OpenAIRealtimeProvider(url={self._url!r})"

    @classmethod
    def from_settings(cls, settings: CallsSettings) -> OpenAIRealtimeProvider | None:
        """A provider from the service's settings, or None without an API key."""
        if settings.openai_api_key is None:
            return None
        return cls(settings.openai_realtime_url, settings.openai_api_key, settings.openai_realtime_model)

    # VoiceProvider -----------------------------------------------------------------------------------
    async def start(self, config: SessionConfig) -> None:
        self._log = log.bind(call_sid=config.call_sid)
        self._failures = RepeatedFailureLog(self._log)
        try:
            self._ws = await connect(
                self._url,
                additional_headers={"Authorization": "Bearer " + self._api_key.get_secret_value()},
                open_timeout=self._connect_timeout,
                close_timeout=2,
                max_size=8 * 2**20,
                logger=RedactingLogger(
                    logging.getLogger("websockets.client"), self._api_key.get_secret_value()
                ),
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            self._log.warning("realtime.refused", status=status)
            raise ProviderUnavailable(f"OpenAI Realtime refused the connection: HTTP {status}") from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            self._log.warning("realtime.unreachable", error=type(exc).__name__)
            raise ProviderUnavailable(f"OpenAI Realtime unreachable: {type(exc).__name__}") from None
        self._log.debug("realtime.connected")
        self._reader = asyncio.create_task(self._read(), name=f"openai:{config.call_sid}")
        await self._send(session_update(config, self._transcription_model))
        await self._send({"type": "response.create"})

    async def send_audio(self, mulaw: bytes) -> None:
        await self._send({"type": "input_audio_buffer.append", "audio": base64.b64encode(mulaw).decode()})

    async def send_dtmf(self, digit: str) -> None:
        """A key press becomes a line in the conversation; the model reads it on its next turn."""
        await self._send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": f"(The caller pressed {digit} on the keypad.)"}
                    ],
                },
            }
        )

    async def send_tool_result(self, call_id: str, output: Mapping[str, Any]) -> None:
        await self._send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": json.dumps(output)},
            }
        )
        await self._send({"type": "response.create"})

    async def interrupt(self, response_id: str, played_ms: int) -> None:
        """Cancel ``response_id`` if still generating, and cut its audio where the caller stopped hearing."""
        audio = self._responses.get(response_id)
        if audio is None or not audio.done:
            await self._send({"type": "response.cancel", "response_id": response_id})
        if audio is None:
            return
        audio.pending.clear()
        start = 0
        for item in audio.items:
            if played_ms < start + item.ms:
                await self._send(
                    {
                        "type": "conversation.item.truncate",
                        "item_id": item.item_id,
                        "content_index": item.content_index,
                        "audio_end_ms": max(0, played_ms - start),
                    }
                )
            start += item.ms

    async def prompt(self, text: str) -> None:
        """A response now, out of turn, with instructions to say ``text``."""
        await self._send(
            {
                "type": "response.create",
                "response": {
                    "instructions": f"Say this to the caller now, briefly, in your own voice: {text}"
                },
            }
        )

    async def events(self) -> AsyncIterator[ProviderEvent]:
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, ProviderClosed):
                return

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            if not self._reader.done():
                self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._emit_closed("closed")

    # internals ---------------------------------------------------------------------------------------
    async def _send(self, event: Mapping[str, Any]) -> None:
        if self._ws is None:
            raise RuntimeError("the provider is not started")
        try:
            await self._ws.send(json.dumps(event))
        except ConnectionClosed:
            # The reader reports the close; what the caller says meanwhile has nowhere to go.
            self._log.debug("realtime.send_after_close", event_type=event.get("type"))

    def _emit(self, event: ProviderEvent) -> None:
        if not self._closed_sent:
            self._events.put_nowait(event)

    def _emit_closed(self, reason: str) -> None:
        if not self._closed_sent:
            self._events.put_nowait(ProviderClosed(reason))
            self._closed_sent = True

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                try:
                    event = json.loads(message)
                except ValueError:
                    self._log.debug("realtime.unreadable_event")
                    continue
                if not isinstance(event, dict):
                    continue
                try:
                    self._on_event(event)
                except Exception as exc:  # one odd event must not end the call
                    self._failures.failure(
                        f"bad_event:{event.get('type')}", "realtime.bad_event", error=type(exc).__name__
                    )
        except ConnectionClosed:
            pass
        finally:
            code = self._ws.close_code
            if self._closing:
                self._log.debug("realtime.closed", code=code)
                self._emit_closed("closed")
            else:
                level = "info" if code == NORMAL_CLOSE else "warning"
                getattr(self._log, level)("realtime.closed", code=code, reason=self._ws.close_reason)
                self._emit_closed(close_reason(code))

    def _response(self, response_id: str) -> ResponseAudio:
        audio = self._responses.get(response_id)
        if audio is None:
            audio = self._responses[response_id] = ResponseAudio()
            while len(self._responses) > RESPONSES_KEPT:
                self._responses.popitem(last=False)
        return audio

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.output_audio.delta":
            self._on_audio(event)
        elif kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("type") == "message" and item.get("id"):
                self._response(str(event.get("response_id", ""))).item(str(item["id"]))
            elif item.get("type") == "function_call" and item.get("call_id"):
                self._tool_names[str(item["call_id"])] = str(item.get("name", ""))
        elif kind == "response.created":
            self._response(str((event.get("response") or {}).get("id", "")))
        elif kind == "response.output_audio.done":
            self._flush(str(event.get("response_id", "")))
        elif kind == "response.output_audio_transcript.done":
            if text := str(event.get("transcript") or "").strip():
                self._emit(AgentTranscript(str(event.get("response_id", "")), text))
        elif kind == "conversation.item.input_audio_transcription.completed":
            if text := str(event.get("transcript") or "").strip():
                self._emit(CallerTranscript(text))
        elif kind == "input_audio_buffer.speech_started":
            self._emit(SpeechStarted())
        elif kind == "input_audio_buffer.speech_stopped":
            self._emit(SpeechStopped())
        elif kind == "response.function_call_arguments.done":
            self._on_tool_call(event)
        elif kind == "response.done":
            response_id = str((event.get("response") or {}).get("id", ""))
            self._flush(response_id)
            self._response(response_id).done = True
            self._emit(ResponseDone(response_id))
        elif kind == "error":
            self._on_error(event.get("error") or {})
        elif kind in ("session.created", "session.updated"):
            self._log.debug("realtime." + kind)

    def _on_audio(self, event: dict[str, Any]) -> None:
        response_id = str(event.get("response_id", ""))
        try:
            chunk = base64.b64decode(str(event.get("delta", "")), validate=True)
        except (binascii.Error, ValueError):
            self._log.debug("realtime.bad_audio_delta", response_id=response_id)
            return
        audio = self._response(response_id)
        audio.item(str(event.get("item_id", "")), int(event.get("content_index") or 0)).bytes_ += len(chunk)
        audio.pending += chunk
        whole = len(audio.pending) - len(audio.pending) % FRAME_BYTES
        if whole:
            self._emit(AgentAudio(response_id, bytes(audio.pending[:whole])))
            del audio.pending[:whole]

    def _flush(self, response_id: str) -> None:
        audio = self._responses.get(response_id)
        if audio is not None and audio.pending:
            self._emit(AgentAudio(response_id, bytes(audio.pending)))
            audio.pending.clear()

    def _on_tool_call(self, event: dict[str, Any]) -> None:
        call_id = str(event.get("call_id", ""))
        known = self._tool_names.pop(call_id, "")
        name = str(event.get("name") or known)
        raw = event.get("arguments") or "{}"
        try:
            arguments = json.loads(raw)
        except (TypeError, ValueError):
            arguments = None
        if not isinstance(arguments, dict):
            self._log.debug("realtime.bad_tool_arguments", tool=name, call_id=call_id)
            arguments = {}
        self._emit(ToolCall(call_id, name, arguments))

    def _on_error(self, error: Mapping[str, Any]) -> None:
        code = str(error.get("code") or "")
        kind = f"{error.get('type') or 'error'}:{code}"
        message = str(error.get("message") or "")
        secret = self._api_key.get_secret_value()
        if secret and secret in message:
            message = message.replace(secret, "<redacted>")
        if code in QUIET_ERROR_CODES:
            self._log.debug("realtime.error", kind=kind, message=message)
            return
        self._failures.failure(kind, "realtime.error", message=message, param=error.get("param"))
