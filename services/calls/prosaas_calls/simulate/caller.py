"""One simulated Twilio call against a running calls service: the signed webhook, the TwiML, the stream.

:class:`SimulatedCall` does what Twilio does for an inbound call that the service answers with
``<Connect><Stream>``: it posts ``incoming_call`` signed with the auth token over the public URL, reads the
stream URL and parameters from the TwiML (the ``wss://PUBLIC_HOST`` URL is mapped onto ``--base-url``),
opens the WebSocket, sends ``connected`` and ``start`` (the parameters as ``customParameters``), then the
caller's audio as one 160-byte µ-law ``media`` frame every 20 ms — silence when the caller says nothing,
as a phone line does. The platform's audio is played by :class:`PlaybackClock` at real time; marks are
echoed when the audio before them has played, ``clear`` drops the queue and echoes pending marks at once.

Everything runs on the event loop's clock; what it measures is in :class:`CallResult`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from prosaas_calls.simulate.playback import RATE, PlaybackClock

FRAME_BYTES = 160
FRAME_S = 0.02
SILENCE_FRAME = b"\xff" * FRAME_BYTES
SPURT_JOIN_S = 0.3  # bot audio after a shorter silence continues the same stretch of speech (display)
BOT_QUIET_S = 1.0  # the bot has finished speaking after this long with nothing queued or arriving
INCOMING_CALL_PATH = "/webhook/incoming_call"
CALL_STATUS_PATH = "/webhook/call_status"
SIGNATURE_HEADER = "X-Twilio-Signature"


def twilio_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class Target:
    """The service under test and the Twilio account it trusts."""

    base_url: str  # where the calls service really listens, e.g. http://127.0.0.1:5050
    public_host: str  # what Twilio signs over and what the TwiML's stream URL names
    auth_token: str
    to: str
    caller: str = "+14155550123"
    account_sid: str = "AC" + "5" * 32

    def signed(self, path: str, form: dict[str, str]) -> dict[str, str]:
        url = f"https://{self.public_host}{path}"
        return {SIGNATURE_HEADER: RequestValidator(self.auth_token).compute_signature(url, form)}

    def stream_url(self, twiml_url: str) -> str:
        """The TwiML's ``wss://PUBLIC_HOST/...`` on the service's real address (``ws://`` for http)."""
        base, stream = urlsplit(self.base_url), urlsplit(twiml_url)
        scheme = "wss" if base.scheme == "https" else "ws"
        return urlunsplit((scheme, base.netloc, stream.path, stream.query, ""))


@dataclass(frozen=True)
class StreamOrder:
    """What the TwiML asked for: a stream (url + parameters), or words to say before hanging up."""

    url: str | None
    parameters: dict[str, str]
    said: str = ""


def parse_twiml(text: str) -> StreamOrder:
    root = ET.fromstring(text)  # noqa: S314 - the service under test wrote it
    stream = root.find("./Connect/Stream")
    if stream is None:
        said = " ".join((say.text or "").strip() for say in root.iter("Say"))
        return StreamOrder(None, {}, said)
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
    return StreamOrder(stream.get("url"), parameters)


@dataclass
class CallResult:
    call_sid: str
    refused: str | None = None  # the TwiML said something and hung up instead of streaming
    ended_by: str = ""
    webhook_ms: float = 0.0
    first_audio_ms: float | None = None  # start sent → first platform audio received
    response_latency_ms: list[float] = field(default_factory=list)  # caller stopped → bot audio
    barge_in_ms: list[float] = field(default_factory=list)  # caller spoke over the bot → clear received
    gaps_ms: list[float] = field(default_factory=list)  # silences inside one response
    frames_sent: int = 0
    frames_received: int = 0
    marks_echoed: int = 0
    clears: int = 0
    bot_audio_ms: int = 0
    duration_s: float = 0.0
    sender_lag_ms: float = 0.0  # the most a caller frame went out late (the simulator's own load)
    said: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, what)
    bot_spoke: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, seconds)
    recording: bytes = field(default=b"", repr=False)

    def figures(self) -> dict[str, Any]:
        """Everything but the audio, JSON-ready."""
        data = dict(self.__dict__)
        data.pop("recording")
        return data


# µ-law byte → loudness (0 for the silence codes 0xFF/0x7F); a frame under QUIET_MEAN on average is silence.
LOUDNESS = bytes(0x7F - (b & 0x7F) for b in range(256))
QUIET_MEAN = 2


def audible(frame: bytes) -> bool:
    return sum(frame.translate(LOUDNESS)) > QUIET_MEAN * len(frame)


def speech_frames(mulaw: bytes) -> list[bytes]:
    """``mulaw`` as 20 ms frames without its leading and trailing silence (synthesised speech has both;
    the line carries silence anyway, and the utterance's timing — for response latency and barge-in —
    is that of the voice)."""
    frames = [mulaw[i : i + FRAME_BYTES] for i in range(0, len(mulaw), FRAME_BYTES)]
    if frames and len(frames[-1]) < FRAME_BYTES:
        frames[-1] += b"\xff" * (FRAME_BYTES - len(frames[-1]))
    loud = [i for i, frame in enumerate(frames) if audible(frame)]
    return frames[loud[0] : loud[-1] + 1] if loud else []


def media_json(stream_sid: str, sequence: int, chunk: int, payload_b64: str) -> str:
    """A ``media`` message as Twilio sends it (counters as decimal strings)."""
    return (
        f'{{"event":"media","sequenceNumber":"{sequence}","streamSid":"{stream_sid}",'
        f'"media":{{"track":"inbound","chunk":"{chunk}","timestamp":"{(chunk - 1) * 20}",'
        f'"payload":"{payload_b64}"}}}}'
    )


SILENCE_B64 = base64.b64encode(SILENCE_FRAME).decode()


class SimulatedCall:
    def __init__(self, target: Target, http: httpx.AsyncClient, *, record: bool = False) -> None:
        self.target = target
        self.http = http
        self.call_sid = twilio_sid("CA")
        self.stream_sid = twilio_sid("MZ")
        self.result = CallResult(self.call_sid)
        self.clock = PlaybackClock(record=record)
        self._loop = asyncio.get_running_loop()
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._t0 = 0.0
        self._sequence = 0
        self._speech: deque[bytes] = deque()
        self._speech_sent: asyncio.Event = asyncio.Event()
        self._utterance_start: float | None = None
        self._barge_at: float | None = None
        self._stopped_at: float | None = None  # the caller's last utterance ended, bot not speaking
        self._audio_arrived = asyncio.Event()
        self._last_audio_at = 0.0
        self._has_marks = asyncio.Event()
        self.closed = asyncio.Event()  # the service closed the stream (the bot hung up)
        self._hung_up = False

    # time ---------------------------------------------------------------------------------------------
    def now(self) -> float:
        return self._loop.time()

    def samples(self, at: float | None = None) -> int:
        return int(((self.now() if at is None else at) - self._t0) * RATE)

    def offset_s(self) -> float:
        return round(self.now() - self._t0, 2)

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    # set-up -------------------------------------------------------------------------------------------
    async def dial(self) -> StreamOrder:
        """Post the signed ``incoming_call`` and read the TwiML."""
        form = {
            "CallSid": self.call_sid,
            "AccountSid": self.target.account_sid,
            "From": self.target.caller,
            "To": self.target.to,
            "Caller": self.target.caller,
            "Called": self.target.to,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        began = time.perf_counter()
        response = await self.http.post(
            self.target.base_url + INCOMING_CALL_PATH,
            data=form,
            headers=self.target.signed(INCOMING_CALL_PATH, form),
        )
        self.result.webhook_ms = (time.perf_counter() - began) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"incoming_call answered HTTP {response.status_code}: {response.text[:200]}")
        order = parse_twiml(response.text)
        if order.url is None:
            self.result.refused = order.said or "no <Stream> in the TwiML"
        return order

    async def open_stream(self, order: StreamOrder) -> None:
        """Open the media WebSocket, send ``connected`` and ``start``, then start the real-time loops."""
        assert order.url is not None
        self._ws = await connect(self.target.stream_url(order.url), max_size=2**20, open_timeout=10)
        await self._ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "event": "start",
            "sequenceNumber": str(self._next_sequence()),
            "streamSid": self.stream_sid,
            "start": {
                "accountSid": self.target.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": order.parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
        self._t0 = self.now()
        await self._ws.send(json.dumps(start))
        for loop in (self._send_audio, self._receive, self._echo_marks):
            self._tasks.append(asyncio.create_task(loop(), name=f"{loop.__name__}:{self.call_sid}"))

    # the caller's side ----------------------------------------------------------------------------------
    async def say(self, mulaw: bytes, text: str = "") -> None:
        """Speak ``mulaw`` at real time (returns once its last frame went out)."""
        self.result.said.append((self.offset_s(), text or f"({len(mulaw) * 1000 // RATE} ms of audio)"))
        frames = speech_frames(mulaw)
        if not frames:
            return
        self._speech_sent.clear()
        self._utterance_start = None
        self._speech.extend(frames)
        await self._wait(self._speech_sent.wait())

    async def dtmf(self, digits: str) -> None:
        for digit in digits:
            self.result.said.append((self.offset_s(), f"(pressed {digit})"))
            await self._send(
                json.dumps(
                    {
                        "event": "dtmf",
                        "sequenceNumber": str(self._next_sequence()),
                        "streamSid": self.stream_sid,
                        "dtmf": {"track": "inbound_track", "digit": digit},
                    }
                )
            )
            await asyncio.sleep(0.1)

    def bot_speaking(self) -> bool:
        return self.clock.speaking(self.samples())

    async def wait_bot_starts(self, timeout: float) -> bool:
        """Until the bot is speaking (True), the stream closes or ``timeout`` passes (False)."""
        if self.bot_speaking():
            return True
        self._audio_arrived.clear()
        return await self._wait(self._audio_arrived.wait(), timeout) and not self.closed.is_set()

    async def wait_bot_done(self, timeout: float, quiet: float = BOT_QUIET_S) -> bool:
        """Until the bot spoke and then stayed quiet for ``quiet`` seconds; False on timeout or close."""
        deadline = self.now() + timeout
        if not await self.wait_bot_starts(timeout):
            return False
        while not self.closed.is_set():
            now = self.now()
            left = max(self.clock.end_samples / RATE + self._t0 - now, self._last_audio_at + quiet - now)
            if left <= 0:
                return True
            if now + left > deadline:
                return False
            await self._wait(asyncio.sleep(left))
        return False

    async def wait_hangup(self, timeout: float) -> bool:
        return await self._wait(self.closed.wait(), timeout)

    async def hangup(self) -> None:
        """``stop`` and close, as Twilio does when the caller hangs up."""
        if self._hung_up:
            return
        self._hung_up = True
        self.result.ended_by = self.result.ended_by or "caller_hangup"
        await self._send(
            json.dumps(
                {
                    "event": "stop",
                    "sequenceNumber": str(self._next_sequence()),
                    "streamSid": self.stream_sid,
                    "stop": {"accountSid": self.target.account_sid, "callSid": self.call_sid},
                }
            )
        )
        if self._ws is not None:
            await self._ws.close()

    async def finish(self, *, post_status: bool = True) -> CallResult:
        """Stop the loops, post the terminal ``call_status`` (frees the slot, finalizes) and sum up."""
        duration = self.now() - self._t0 if self._t0 else 0.0
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await task
        if self._ws is not None:
            await self._ws.close()
        if post_status and self.result.refused is None:
            form = {
                "CallSid": self.call_sid,
                "AccountSid": self.target.account_sid,
                "From": self.target.caller,
                "To": self.target.to,
                "CallStatus": "completed",
                "CallDuration": str(round(duration)),
                "Direction": "inbound",
                "ApiVersion": "2010-04-01",
            }
            await self.http.post(
                self.target.base_url + CALL_STATUS_PATH,
                data=form,
                headers=self.target.signed(CALL_STATUS_PATH, form),
            )
        result = self.result
        result.duration_s = round(duration, 2)
        result.gaps_ms = list(self.clock.gaps_ms)
        result.frames_received = self.clock.frames
        result.bot_audio_ms = self.clock.bytes_received * 1000 // RATE
        if self.clock.record:
            result.recording = self.clock.played(max(self.samples(), self.clock.end_samples))
        return result

    # loops --------------------------------------------------------------------------------------------
    async def _wait(self, awaitable: Any, timeout: float | None = None) -> bool:
        """Await ``awaitable`` unless the stream closes first or ``timeout`` passes; True if it finished."""
        task = asyncio.ensure_future(awaitable)
        closed = asyncio.ensure_future(self.closed.wait())
        try:
            done, _ = await asyncio.wait({task, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            return task in done
        finally:
            for pending in (task, closed):
                pending.cancel()

    async def _send(self, message: str) -> None:
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(message)

    async def _send_audio(self) -> None:
        """One frame every 20 ms on an absolute schedule (late wake-ups catch up, as a jitter buffer)."""
        assert self._ws is not None
        chunk = 0
        while not self.closed.is_set():
            chunk += 1
            delay = self._t0 + (chunk - 1) * FRAME_S - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self.result.sender_lag_ms = max(self.result.sender_lag_ms, -delay * 1000)
            if self._speech:
                frame = self._speech.popleft()
                if self._utterance_start is None:
                    self._utterance_start = self.now()
                    self._stopped_at = None
                    if self.bot_speaking():
                        self._barge_at = self._utterance_start
                payload = base64.b64encode(frame).decode()
            else:
                payload = SILENCE_B64
            try:
                await self._ws.send(media_json(self.stream_sid, self._next_sequence(), chunk, payload))
            except ConnectionClosed:
                return
            self.result.frames_sent += 1
            if not self._speech and not self._speech_sent.is_set() and self._utterance_start is not None:
                self._stopped_at = None if self.bot_speaking() else self.now()
                self._speech_sent.set()

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                event = message.get("event")
                if event == "media":
                    self._on_media(base64.b64decode(message["media"]["payload"]))
                elif event == "mark":
                    self.clock.on_mark(str(message["mark"]["name"]))
                    self._has_marks.set()
                elif event == "clear":
                    await self._on_clear()
        except ConnectionClosed:
            pass
        finally:
            if not self._hung_up:
                self.result.ended_by = self.result.ended_by or "bot_hangup"
            self.closed.set()

    def _on_media(self, payload: bytes) -> None:
        now = self.now()
        if self.clock.on_media(payload, self.samples(now)):
            at = now - self._t0
            spoke = self.result.bot_spoke
            if not spoke or at - (spoke[-1][0] + spoke[-1][1]) > SPURT_JOIN_S:
                spoke.append((round(at, 2), 0.0))
        if self.result.bot_spoke:
            at, _ = self.result.bot_spoke[-1]
            self.result.bot_spoke[-1] = (at, round(self.clock.end_samples / RATE - at, 2))
        if self.result.first_audio_ms is None:
            self.result.first_audio_ms = (now - self._t0) * 1000
        if self._stopped_at is not None:
            self.result.response_latency_ms.append((now - self._stopped_at) * 1000)
            self._stopped_at = None
        self._last_audio_at = now
        self._audio_arrived.set()

    async def _on_clear(self) -> None:
        now = self.now()
        self.result.clears += 1
        if self._barge_at is not None:
            self.result.barge_in_ms.append((now - self._barge_at) * 1000)
            self._barge_at = None
        if self.result.bot_spoke:
            at, _ = self.result.bot_spoke[-1]
            self.result.bot_spoke[-1] = (at, round(max(0.0, now - self._t0 - at), 2))
        for name in self.clock.on_clear(self.samples(now)):
            await self._echo(name)

    async def _echo_marks(self) -> None:
        """Echo each mark when the audio queued before it has played."""
        while True:
            await self._has_marks.wait()
            if not self.clock.marks:
                self._has_marks.clear()
                continue
            delay = self._t0 + self.clock.marks[0].due_samples / RATE - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            for name in self.clock.due_marks(self.samples()):
                await self._echo(name)

    async def _echo(self, name: str) -> None:
        self.result.marks_echoed += 1
        await self._send(
            json.dumps(
                {
                    "event": "mark",
                    "sequenceNumber": str(self._next_sequence()),
                    "streamSid": self.stream_sid,
                    "mark": {"name": name},
                }
            )
        )
