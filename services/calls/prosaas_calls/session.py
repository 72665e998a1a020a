"""One call between Twilio's media stream and a voice provider: audio both ways, what the caller has
heard, barge-in, turns and tool calls.

The transport (:mod:`prosaas_calls.media.stream`) hands Twilio's events to :meth:`CallSession.on_twilio`;
:meth:`CallSession.run_provider` is the other direction's task, turning provider events into Twilio
messages. Agent audio is sent as 20 ms ``media`` frames followed by a ``mark`` named
``{response_id}:{ms sent so far}``; Twilio echoes a mark when the audio before it has played, so
``played_ms`` is what the caller really heard. When the caller starts speaking over the agent
(barge-in) the session stops sending that response at once, sends ``clear`` (Twilio drops what it has
queued) and tells the provider to cut the response at ``played_ms``; the rest of that response, and
the marks Twilio flushes for it, are ignored.

A call ends from this side in one way: something asks for an end (the agent's ``end_call`` or
``transfer_call`` tool, or the watchdog's silence and time-limit goodbyes through
:meth:`CallSession.end_after_response`), the agent says its last words, and once that response has been
heard (its last mark came back) the session runs the ``before_end`` hook (the transfer) and returns the
reason — so a goodbye is never cut off. :attr:`CallSession.quiet_since` tells the watchdog since when
neither side has said anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from prosaas_calls.media.twilio_protocol import (
    FRAME_MS,
    Dtmf,
    Mark,
    Media,
    StreamCounters,
    clear_message,
    frames,
    mark_message,
    media_message,
)
from prosaas_calls.providers.base import (
    AgentAudio,
    AgentTranscript,
    CallerTranscript,
    ProviderClosed,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    VoiceProvider,
)
from prosaas_common.logging import get_logger

log = get_logger("prosaas.calls.session")

SendText = Callable[[str], Awaitable[None]]
ToolRunner = Callable[[str, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]
TOOL_UNAVAILABLE = "Sorry, I can't do that right now."
# After the goodbye was sent, how much longer than its length to wait for Twilio's last mark.
HEARD_MARGIN_S = 2.0


class TurnSink(Protocol):
    """Where the session puts what was said; persisting must not hold up the audio."""

    def add(self, speaker: str, text: str, offset_ms: int) -> None: ...


@dataclass
class Playback:
    """The agent response being played: how much was sent to Twilio and how much the caller heard."""

    response_id: str | None = None
    sent_ms: int = 0
    played_ms: int = 0
    interrupted: set[str] = field(default_factory=set)

    @property
    def speaking(self) -> bool:
        return self.response_id is not None and self.sent_ms > self.played_ms


@dataclass
class SessionMetrics:
    barge_ins: int = 0
    barge_in_reaction_ms: list[float] = field(default_factory=list)
    tool_calls: int = 0
    first_audio_ms: float | None = None  # since the session started
    response_latency_ms: list[float] = field(default_factory=list)


async def no_tools(name: str, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"error": TOOL_UNAVAILABLE}


class CallSession:
    def __init__(
        self,
        *,
        call_sid: str,
        stream_sid: str,
        send: SendText,
        provider: VoiceProvider,
        turns: TurnSink,
        counters: StreamCounters,
        tools: ToolRunner = no_tools,
        requested_end: Callable[[], str | None] = lambda: None,
        before_end: Callable[[str], Awaitable[bool]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self._send = send
        self.provider = provider
        self.turns = turns
        self.counters = counters
        self.tools = tools
        self.requested_end = requested_end
        self.before_end = before_end
        self._clock = clock
        self._end_after: tuple[str, str | None] | None = None  # (reason, the response not to end on)
        self._heard = asyncio.Event()  # set while everything sent has been heard
        self._heard.set()
        self._speech_stopped_at: float | None = None
        self._started = clock()
        self.quiet_since = self._started  # the caller and the agent silent since then
        self.caller_active_at: float | None = None  # the caller's last speech or key press
        self.playback = Playback()
        self.metrics = SessionMetrics()

    def offset_ms(self) -> int:
        return int((self._clock() - self._started) * 1000)

    @property
    def agent_speaking(self) -> bool:
        return not self._heard.is_set()

    def end_after_response(self, reason: str) -> None:
        """End the call once the agent's next response (not the one playing now) has been heard."""
        if self._end_after is None:
            self._end_after = (reason, self.playback.response_id if self.agent_speaking else None)

    def _ending(self, response_id: str) -> str | None:
        if (reason := self.requested_end()) is not None:
            return reason
        if self._end_after is not None and self._end_after[1] != response_id:
            return self._end_after[0]
        return None

    def _activity(self, *, caller: bool = False) -> None:
        self.quiet_since = self._clock()
        if caller:
            self.caller_active_at = self.quiet_since

    # Twilio → provider -------------------------------------------------------------------------------
    async def on_twilio(self, event: object) -> None:
        if isinstance(event, Media):
            if event.track == "inbound":
                await self.provider.send_audio(event.payload)
        elif isinstance(event, Mark):
            self._on_mark(event.name)
        elif isinstance(event, Dtmf):
            self._activity(caller=True)
            await self.provider.send_dtmf(event.digit)

    def _on_mark(self, name: str) -> None:
        response_id, _, ms = name.rpartition(":")
        playback = self.playback
        if response_id != playback.response_id or response_id in playback.interrupted or not ms.isdigit():
            return  # an old response's mark, or one Twilio flushed after a clear: not heard
        playback.played_ms = max(playback.played_ms, int(ms))
        if playback.played_ms >= playback.sent_ms:
            self._heard.set()
            self._activity()

    # provider → Twilio -------------------------------------------------------------------------------
    async def run_provider(self) -> str:
        """Relay provider events until it closes; returns why it ended."""
        async for event in self.provider.events():
            if isinstance(event, AgentAudio):
                await self._play(event)
            elif isinstance(event, AgentTranscript):
                self.turns.add("agent", event.text, self.offset_ms())
            elif isinstance(event, CallerTranscript):
                self.turns.add("caller", event.text, self.offset_ms())
            elif isinstance(event, SpeechStarted):
                self._activity(caller=True)
                await self.barge_in()
            elif isinstance(event, SpeechStopped):
                self._activity(caller=True)
                self._speech_stopped_at = self.quiet_since
            elif isinstance(event, ToolCall):
                await self._run_tool(event)
            elif isinstance(event, ResponseDone) and (reason := self._ending(event.response_id)):
                await self._until_heard()
                if self.before_end is None or await self.before_end(reason):
                    return reason
            elif isinstance(event, ProviderClosed):
                return event.reason
        return "provider_closed"

    async def _play(self, audio: AgentAudio) -> None:
        playback = self.playback
        if audio.response_id in playback.interrupted:
            return
        if audio.response_id != playback.response_id:
            playback.response_id, playback.sent_ms, playback.played_ms = audio.response_id, 0, 0
            now = self._clock()
            if self.metrics.first_audio_ms is None:
                self.metrics.first_audio_ms = (now - self._started) * 1000
            if self._speech_stopped_at is not None:
                self.metrics.response_latency_ms.append((now - self._speech_stopped_at) * 1000)
                self._speech_stopped_at = None
        self._heard.clear()
        for frame in frames(audio.mulaw):
            await self._send(media_message(self.stream_sid, frame))
            playback.sent_ms += FRAME_MS
            self.counters.frames_out += 1
        await self._send(mark_message(self.stream_sid, f"{audio.response_id}:{playback.sent_ms}"))

    async def barge_in(self) -> None:
        """The caller talks over the agent: stop, clear Twilio's queue, cut the response where heard."""
        playback = self.playback
        if not playback.speaking or playback.response_id is None:
            return
        began = self._clock()
        response_id = playback.response_id
        playback.interrupted.add(response_id)
        await self._send(clear_message(self.stream_sid))
        self.metrics.barge_ins += 1
        self.metrics.barge_in_reaction_ms.append((self._clock() - began) * 1000)
        await self.provider.interrupt(response_id, playback.played_ms)
        self._heard.set()
        log.debug(
            "call.barge_in", call_sid=self.call_sid, response_id=response_id, played_ms=playback.played_ms
        )
        playback.sent_ms = playback.played_ms

    async def _until_heard(self) -> None:
        """Wait until the caller heard everything sent (the goodbye), at most its length plus a margin."""
        pending_ms = max(0, self.playback.sent_ms - self.playback.played_ms)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(pending_ms / 1000 + HEARD_MARGIN_S):
                await self._heard.wait()

    async def _run_tool(self, call: ToolCall) -> None:
        """Run a tool; any failure becomes a sentence the agent can say, never a dead call."""
        self.metrics.tool_calls += 1
        try:
            output = await self.tools(call.name, call.arguments)
        except Exception as exc:  # a tool's bug must not end the call
            log.warning("call.tool_failed", call_sid=self.call_sid, tool=call.name, error=type(exc).__name__)
            output = {"error": TOOL_UNAVAILABLE}
        log.info("call.tool", call_sid=self.call_sid, tool=call.name, ok="error" not in output)
        await self.provider.send_tool_result(call.call_id, output)
