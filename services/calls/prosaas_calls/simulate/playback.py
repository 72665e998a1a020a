"""What Twilio does with the audio the platform sends on a call: a playback clock.

Twilio queues the ``media`` it receives and plays it at real time (8000 µ-law samples a second); a
``mark`` is echoed when everything queued before it has played; ``clear`` drops whatever is queued and
echoes the pending marks at once. :class:`PlaybackClock` keeps that timeline in samples since the stream
started — pure bookkeeping, the caller passes the current time in — and measures what a listener hears:

- a **playback gap** is silence inside one response: the queue ran dry and more audio of the same
  response came later (the response is known from the next mark's ``{response_id}:{ms}`` name, so a
  pause *between* responses never counts as a gap);
- the recording (optional) is the audio as played, with silence where nothing played.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

RATE = 8000  # µ-law samples (bytes) a second
SILENCE = 0xFF


def response_of(mark: str) -> str:
    """The response id of a mark named ``{response_id}:{ms}`` (the whole name otherwise)."""
    head, sep, _ = mark.rpartition(":")
    return head if sep else mark


@dataclass
class PendingMark:
    due_samples: int
    name: str


@dataclass
class PlaybackClock:
    record: bool = False
    end_samples: int = 0  # where the queued audio ends (== now when nothing is queued)
    frames: int = 0
    bytes_received: int = 0
    gaps_ms: list[float] = field(default_factory=list)  # silences inside a response
    marks: deque[PendingMark] = field(default_factory=deque)
    recording: bytearray = field(default_factory=bytearray)
    last_response: str | None = None  # of the last mark received
    _underrun_ms: float = 0.0  # the queue ran dry before the latest audio; a gap if the same response

    def queued_ms(self, now_samples: int) -> float:
        return max(0, self.end_samples - now_samples) * 1000 / RATE

    def speaking(self, now_samples: int) -> bool:
        return self.end_samples > now_samples

    def on_media(self, payload: bytes, now_samples: int) -> bool:
        """Queue audio that arrived at ``now_samples``; True when it starts a new stretch of speech."""
        started = self.end_samples < now_samples
        if started:
            self._underrun_ms += (now_samples - self.end_samples) * 1000 / RATE if self.frames else 0.0
            if self.record:
                self.recording.extend(bytes([SILENCE]) * (now_samples - len(self.recording)))
            self.end_samples = now_samples
        if self.record:
            self.recording.extend(payload)
        self.end_samples += len(payload)
        self.frames += 1
        self.bytes_received += len(payload)
        return started

    def on_mark(self, name: str) -> PendingMark:
        """A mark after the audio queued so far: due when that audio has played."""
        response = response_of(name)
        if self._underrun_ms:
            # The silence before this mark's audio is a gap only inside one response.
            if response == self.last_response:
                self.gaps_ms.append(self._underrun_ms)
            self._underrun_ms = 0.0
        self.last_response = response
        mark = PendingMark(self.end_samples, name)
        self.marks.append(mark)
        return mark

    def due_marks(self, now_samples: int) -> list[str]:
        """Marks whose audio has played by ``now_samples``, in order (removed from the queue)."""
        due: list[str] = []
        while self.marks and self.marks[0].due_samples <= now_samples:
            due.append(self.marks.popleft().name)
        return due

    def on_clear(self, now_samples: int) -> list[str]:
        """Drop the queued audio; every pending mark is echoed now (as Twilio does)."""
        if self.end_samples > now_samples:
            self.end_samples = now_samples
            if self.record:
                del self.recording[now_samples:]
        self._underrun_ms = 0.0
        self.last_response = None
        flushed = [mark.name for mark in self.marks]
        self.marks.clear()
        return flushed

    def played(self, now_samples: int) -> bytes:
        """The recording up to ``now_samples`` (silence after the last audio)."""
        if len(self.recording) > now_samples:
            return bytes(self.recording[:now_samples])
        return bytes(self.recording) + bytes([SILENCE]) * (now_samples - len(self.recording))
