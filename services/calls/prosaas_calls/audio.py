"""Telephone audio: G.711 µ-law at 8 kHz (what Twilio's media streams carry) and the 16-bit PCM the
offline recogniser, the synthesiser and WAV files use.

Conversions are the standard library's ``audioop`` (C, no per-sample Python), or its maintained
``audioop-lts`` backport where the standard library no longer has it.
"""

from __future__ import annotations

import io
import warnings
import wave
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

PHONE_RATE = 8000
SAMPLE_WIDTH = 2  # 16-bit PCM
ULAW_SILENCE = b"\xff"


def ulaw_to_pcm16(mulaw: bytes) -> bytes:
    return audioop.ulaw2lin(mulaw, SAMPLE_WIDTH)


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    return audioop.lin2ulaw(pcm, SAMPLE_WIDTH)


class Resampler:
    """Mono 16-bit PCM from one rate to another, keeping the filter state between chunks of a stream."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._state: tuple[int, tuple[tuple[int, int], ...]] | None = None

    def convert(self, pcm: bytes) -> bytes:
        if self.from_rate == self.to_rate or not pcm:
            return pcm
        converted, self._state = audioop.ratecv(
            pcm, SAMPLE_WIDTH, 1, self.from_rate, self.to_rate, self._state
        )
        return converted


def wav_to_ulaw(data: bytes) -> bytes:
    """A WAV file (PCM of any rate, mono or stereo) as µ-law 8 kHz mono."""
    with wave.open(io.BytesIO(data)) as wav:
        width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
        pcm = wav.readframes(wav.getnframes())
    if width != SAMPLE_WIDTH:
        pcm = audioop.lin2lin(pcm, width, SAMPLE_WIDTH)
    if channels == 2:
        pcm = audioop.tomono(pcm, SAMPLE_WIDTH, 0.5, 0.5)
    elif channels != 1:
        raise ValueError(f"unsupported WAV with {channels} channels")
    return pcm16_to_ulaw(Resampler(rate, PHONE_RATE).convert(pcm))


def read_wav_as_ulaw(path: Path) -> bytes:
    return wav_to_ulaw(path.read_bytes())


def write_ulaw_wav(path: Path, mulaw: bytes) -> None:
    """µ-law 8 kHz audio into a 16-bit PCM WAV file any player opens."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(PHONE_RATE)
        wav.writeframes(ulaw_to_pcm16(mulaw))


def ulaw_silence(ms: int) -> bytes:
    return ULAW_SILENCE * (PHONE_RATE * ms // 1000)
