"""A local OpenAI Realtime API (GA protocol) over WebSocket: what the calls provider talks to in tests.

The handshake needs ``Authorization: Bearer <api_key>`` (else 401 with OpenAI's error JSON) and a
``?model=`` on ``/v1/realtime``. Then, as the real server: ``session.created`` first; ``session.update``
(``session.type`` required) answers ``session.updated``; ``input_audio_buffer.append`` collects the base64
audio; ``response.create`` streams a response — ``response.created``, ``response.output_item.added``,
``deltas`` times ``response.output_audio.delta`` of ``audio``, ``response.output_audio.done``,
``response.output_audio_transcript.done``, ``response.output_item.done``, ``response.done``;
``response.cancel`` ends a response still generating as ``cancelled`` (else error
``response_cancel_not_active``); ``conversation.item.truncate`` checks the item and that ``audio_end_ms``
is within its audio, then answers ``conversation.item.truncated``; ``conversation.item.create`` answers
``conversation.item.added``. Anything else, or a malformed event, gets an ``error`` event.

Test controls (not part of the API): :attr:`FakeRealtime.received` (every client event, in order),
:meth:`~FakeRealtime.inject` (send server events, e.g. ``input_audio_buffer.speech_started``),
:meth:`~FakeRealtime.call_function` (a response that is a function call), ``hold_responses`` (a response
keeps generating until cancelled or :meth:`~FakeRealtime.finish_responses`), and
:meth:`~FakeRealtime.close_connections`.

For load (``bench/calls_load.py``) it can also behave like a live model: ``vad`` emulates server VAD on the
appended audio (``input_audio_buffer.speech_started`` on the first loud chunk, and with a response still
streaming it is cancelled as ``interrupt_response`` does; after ``silence_ms`` of quiet
``speech_stopped``, ``committed``, the caller's transcription and a new response), ``pace`` streams a
response's deltas at that multiple of real time instead of all at once, and ``keep_received=False`` keeps
no per-event history (a long run would otherwise hold every appended frame).

Run it alone::

    python -m tests.fakes.openai_realtime --port 8098 --api-key test-key
    python -m tests.fakes.openai_realtime --port 8098 --vad --pace 1 --response-ms 3000 --quiet
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

MULAW_BYTES_PER_MS = 8
# µ-law byte → how loud it is (0 for the two silence codes 0xFF/0x7F, 127 for full scale).
LOUDNESS = bytes(0x7F - (b & 0x7F) for b in range(256))
LOUD_MEAN = 12  # mean loudness of a chunk the emulated VAD takes for speech (silence is 0, speech ~40)


def loud(chunk: bytes) -> bool:
    return bool(chunk) and sum(chunk.translate(LOUDNESS)) > LOUD_MEAN * len(chunk)


@dataclass
class VadState:
    """Server VAD of one connection: is the caller speaking, and how long it has been quiet."""

    speaking: bool = False
    quiet_ms: float = 0.0
    heard_ms: float = 0.0


def quiet_logger() -> logging.Logger:
    """The fake's ``websockets`` logger, held at INFO: its DEBUG lines echo the request headers (the key)."""
    logger = logging.getLogger("tests.fakes.openai_realtime")
    logger.setLevel(logging.INFO)
    return logger


@dataclass
class FakeRealtime:
    api_key: str
    audio: bytes = bytes(range(0x20, 0x70)) * 10  # 800 bytes: 100 ms of µ-law a delta
    deltas: int = 3
    transcript: str = "Hello, thanks for calling. How can I help?"
    hold_responses: bool = False
    vad: bool = False
    silence_ms: int = 500
    pace: float = 0.0  # 0: a response's deltas all at once; else streamed at this multiple of real time
    keep_received: bool = True
    caller_transcript: str = "I would like to book an appointment."
    received: list[dict[str, Any]] = field(default_factory=list)
    errors_sent: list[dict[str, Any]] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    refused: int = 0
    input_audio: bytearray = field(default_factory=bytearray)
    responses: list[str] = field(default_factory=list)  # ids of the responses created, in order
    audio_items: dict[str, str] = field(default_factory=dict)  # response id → its audio item id
    url: str = ""
    _item_ms: dict[str, int] = field(default_factory=dict)
    _open: dict[str, tuple[ServerConnection, str]] = field(default_factory=dict)  # still generating
    _session: dict[str, Any] = field(default_factory=dict)
    _connections: list[ServerConnection] = field(default_factory=list)
    _vad_state: dict[ServerConnection, VadState] = field(default_factory=dict)
    _streaming: dict[str, tuple[ServerConnection, asyncio.Task[None]]] = field(default_factory=dict)
    _server: Server | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # lifecycle ---------------------------------------------------------------------------------------
    async def start(self, port: int = 0) -> str:
        self._server = await serve(
            self._handle, "127.0.0.1", port, process_request=self._check, logger=quiet_logger()
        )
        bound = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{bound}/v1/realtime"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # test controls -----------------------------------------------------------------------------------
    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.received if event.get("type") == kind]

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The client events of ``kind`` once there are ``count`` of them (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(found := self.of_type(kind)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} {kind} not received within {timeout}s: {len(found)}")
            await asyncio.sleep(0.01)
        return found

    async def inject(self, *events: dict[str, Any]) -> None:
        """Send server events (an ``event_id`` is added) to every open connection."""
        for connection in list(self._connections):
            for event in events:
                await self._send(connection, dict(event))

    async def call_function(self, name: str, arguments: str, call_id: str = "call_1") -> str:
        """A response whose output is a call of ``name`` with ``arguments`` (a JSON string, or not)."""
        response_id, item_id = self._new_id("resp"), self._new_id("item")
        item = {"id": item_id, "type": "function_call", "status": "completed", "name": name}
        item |= {"call_id": call_id, "arguments": arguments}
        await self.inject(
            {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}},
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            },
            {
                "type": "response.function_call_arguments.done",
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
            },
            {
                "type": "response.done",
                "response": {"id": response_id, "status": "completed", "output": [item]},
            },
        )
        return response_id

    async def finish_responses(self) -> None:
        for response_id, (connection, item_id) in list(self._open.items()):
            del self._open[response_id]
            await self._finish(connection, response_id, item_id)

    async def close_connections(self, code: int = 1000, reason: str = "") -> None:
        for connection in list(self._connections):
            await connection.close(code, reason)

    # protocol ----------------------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path != "/v1/realtime":
            return connection.respond(404, "Not Found\n")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.refused += 1
            body = {
                "error": {
                    "message": "Incorrect API key provided.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                    "param": None,
                }
            }
            response = connection.respond(401, json.dumps(body))
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            return response
        model = parse_qs(parts.query).get("model", [""])[0]
        if not model:
            return connection.respond(400, "Missing required parameter: 'model'.\n")
        self.models.append(model)
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        self._connections.append(connection)
        self._session = {"type": "realtime", "id": self._new_id("sess"), "object": "realtime.session"}
        try:
            await self._send(connection, {"type": "session.created", "session": self._session})
            async for message in connection:
                try:
                    event = json.loads(message)
                except ValueError:
                    await self._error(connection, "invalid_json", "The event is not valid JSON.", None)
                    continue
                if not isinstance(event, dict):
                    await self._error(connection, "invalid_value", "An event must be an object.", None)
                    continue
                if self.keep_received:
                    self.received.append(event)
                await self._on_client_event(connection, event)
        except ConnectionClosed:
            pass
        finally:
            self._connections.remove(connection)
            self._vad_state.pop(connection, None)
            for response_id, (owner, task) in list(self._streaming.items()):
                if owner is connection:
                    task.cancel()
                    del self._streaming[response_id]

    async def _send(self, connection: ServerConnection, event: dict[str, Any]) -> None:
        event.setdefault("event_id", self._new_id("event"))
        await connection.send(json.dumps(event))

    async def _error(
        self, connection: ServerConnection, code: str, message: str, param: str | None, event_id: Any = None
    ) -> None:
        error = {"type": "invalid_request_error", "code": code, "message": message, "param": param}
        error["event_id"] = event_id
        self.errors_sent.append(error)
        await self._send(connection, {"type": "error", "error": error})

    async def _on_client_event(self, connection: ServerConnection, event: dict[str, Any]) -> None:
        kind, event_id = event.get("type"), event.get("event_id")
        if kind == "session.update":
            session = event.get("session")
            if not isinstance(session, dict) or session.get("type") != "realtime":
                await self._error(
                    connection,
                    "missing_required_parameter",
                    "Missing required parameter: 'session.type'.",
                    "session.type",
                    event_id,
                )
                return
            self._session.update(session)
            await self._send(connection, {"type": "session.updated", "session": self._session})
        elif kind == "input_audio_buffer.append":
            try:
                chunk = base64.b64decode(str(event.get("audio", "")), validate=True)
            except (binascii.Error, ValueError):
                await self._error(connection, "invalid_value", "Invalid base64 audio.", "audio", event_id)
                return
            if self.keep_received:
                self.input_audio += chunk
            if self.vad:
                await self._detect_speech(connection, chunk)
        elif kind == "response.create":
            await self._respond(connection)
        elif kind == "response.cancel":
            response_id = event.get("response_id") or next(reversed(self._open), None)
            if response_id in self._streaming:
                await self._cancel_stream(str(response_id), "client_cancelled")
                return
            if response_id not in self._open:
                message = "Cancellation failed: no active response found"
                await self._error(connection, "response_cancel_not_active", message, None, event_id)
                return
            del self._open[response_id]
            response = {"id": response_id, "status": "cancelled"}
            response["status_details"] = {"type": "cancelled", "reason": "client_cancelled"}
            await self._send(connection, {"type": "response.done", "response": response})
        elif kind == "conversation.item.truncate":
            await self._truncate(connection, event)
        elif kind == "conversation.item.create":
            item = dict(event.get("item") or {})
            if item.get("type") not in ("message", "function_call_output", "function_call"):
                await self._error(connection, "invalid_value", "Invalid item type.", "item.type", event_id)
                return
            item.setdefault("id", self._new_id("item"))
            await self._send(connection, {"type": "conversation.item.added", "item": item})
        else:
            await self._error(connection, "invalid_value", f"Invalid value: '{kind}'.", "type", event_id)

    async def _respond(self, connection: ServerConnection) -> None:
        response_id, item_id = self._new_id("resp"), self._new_id("item")
        self.responses.append(response_id)
        self.audio_items[response_id] = item_id
        self._item_ms[item_id] = self.deltas * len(self.audio) // MULAW_BYTES_PER_MS
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        await self._send(
            connection,
            {
                "type": "response.created",
                "response": {"id": response_id, "status": "in_progress", "output": []},
            },
        )
        await self._send(
            connection,
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            },
        )
        delta = base64.b64encode(self.audio).decode()
        if self.pace > 0:
            task = asyncio.create_task(self._stream(connection, response_id, item_id, delta))
            self._streaming[response_id] = (connection, task)
            return
        for _ in range(self.deltas):
            await self._send(
                connection,
                {
                    "type": "response.output_audio.delta",
                    "response_id": response_id,
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": delta,
                },
            )
        if self.hold_responses:
            self._open[response_id] = (connection, item_id)
        else:
            await self._finish(connection, response_id, item_id)

    async def _stream(self, connection: ServerConnection, response_id: str, item_id: str, delta: str) -> None:
        """The deltas of a response at ``pace`` times real time (on an absolute schedule), then its end."""
        loop = asyncio.get_running_loop()
        began, delta_s = loop.time(), len(self.audio) / MULAW_BYTES_PER_MS / 1000 / self.pace
        where = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        try:
            for index in range(self.deltas):
                await asyncio.sleep(max(0.0, began + index * delta_s - loop.time()))
                await self._send(connection, {"type": "response.output_audio.delta", **where, "delta": delta})
            del self._streaming[response_id]
            await self._finish(connection, response_id, item_id)
        except ConnectionClosed:
            self._streaming.pop(response_id, None)

    async def _cancel_stream(self, response_id: str, reason: str) -> None:
        connection, task = self._streaming.pop(response_id)
        task.cancel()
        details = {"type": "cancelled", "reason": reason}
        response = {"id": response_id, "status": "cancelled", "status_details": details}
        await self._send(connection, {"type": "response.done", "response": response})

    async def _detect_speech(self, connection: ServerConnection, chunk: bytes) -> None:
        """Server VAD, roughly: speech starts on a loud chunk and stops after ``silence_ms`` of quiet."""
        state = self._vad_state.setdefault(connection, VadState())
        chunk_ms = len(chunk) / MULAW_BYTES_PER_MS
        state.heard_ms += chunk_ms
        if loud(chunk):
            state.quiet_ms = 0.0
            if not state.speaking:
                state.speaking = True
                await self._send(
                    connection,
                    {
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": int(state.heard_ms - chunk_ms),
                        "item_id": self._new_id("item"),
                    },
                )
                for response_id, (owner, _) in list(self._streaming.items()):
                    if owner is connection:  # interrupt_response: the caller talks over the answer
                        await self._cancel_stream(response_id, "turn_detected")
            return
        if not state.speaking:
            return
        state.quiet_ms += chunk_ms
        if state.quiet_ms >= self.silence_ms:
            state.speaking = False
            item_id = self._new_id("item")
            await self._send(
                connection,
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": int(state.heard_ms),
                    "item_id": item_id,
                },
            )
            await self._send(connection, {"type": "input_audio_buffer.committed", "item_id": item_id})
            await self._send(
                connection,
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": self.caller_transcript,
                },
            )
            await self._respond(connection)

    async def _finish(self, connection: ServerConnection, response_id: str, item_id: str) -> None:
        where = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        await self._send(connection, {"type": "response.output_audio.done", **where})
        await self._send(
            connection,
            {"type": "response.output_audio_transcript.done", **where, "transcript": self.transcript},
        )
        content = [{"type": "output_audio", "transcript": self.transcript}]
        item = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": content,
        }
        await self._send(
            connection,
            {
                "type": "response.output_item.done",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            },
        )
        await self._send(
            connection,
            {
                "type": "response.done",
                "response": {"id": response_id, "status": "completed", "output": [item]},
            },
        )

    async def _truncate(self, connection: ServerConnection, event: dict[str, Any]) -> None:
        item_id, end_ms = event.get("item_id"), event.get("audio_end_ms")
        event_id = event.get("event_id")
        if item_id not in self._item_ms:
            await self._error(
                connection, "invalid_value", f"Item '{item_id}' not found.", "item_id", event_id
            )
        elif not isinstance(end_ms, int) or not 0 <= end_ms <= self._item_ms[str(item_id)]:
            message = "audio_end_ms must be within the item's audio duration."
            await self._error(connection, "invalid_value", message, "audio_end_ms", event_id)
        elif event.get("content_index") != 0:
            await self._error(
                connection, "invalid_value", "Invalid content_index.", "content_index", event_id
            )
        else:
            truncated = {"item_id": item_id, "content_index": 0, "audio_end_ms": end_ms}
            await self._send(connection, {"type": "conversation.item.truncated", **truncated})


async def serve_forever(fake: FakeRealtime, port: int) -> None:
    print(await fake.start(port), flush=True)
    await asyncio.Future()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", default="test-openai-key")
    parser.add_argument("--vad", action="store_true", help="emulate server VAD and answer each utterance")
    parser.add_argument(
        "--pace", type=float, default=0.0, help="stream responses at this multiple of real time"
    )
    parser.add_argument("--response-ms", type=int, default=300, help="length of a response's audio")
    parser.add_argument("--quiet", action="store_true", help="keep no history of client events")
    args = parser.parse_args()
    fake = FakeRealtime(api_key=args.api_key, vad=args.vad, pace=args.pace, keep_received=not args.quiet)
    fake.deltas = max(1, args.response_ms // (len(fake.audio) // MULAW_BYTES_PER_MS))
    asyncio.run(serve_forever(fake, args.port))


if __name__ == "__main__":
    main()
