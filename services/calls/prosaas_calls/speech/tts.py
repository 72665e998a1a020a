"""Text to telephone audio with espeak-ng (the Debian package), as µ-law 8 kHz.

espeak-ng runs as a subprocess driven by asyncio — no thread, and a slow synthesis never holds up the
event loop. Its WAV output (22.05 kHz) is resampled and encoded here.
"""

from __future__ import annotations

import asyncio
import functools
import shutil

from prosaas_calls.audio import wav_to_ulaw

ESPEAK = "espeak-ng"
DEFAULT_VOICE = "en-us"
DEFAULT_WORDS_PER_MINUTE = 160
SYNTHESIS_TIMEOUT_S = 10.0


class SpeechUnavailable(Exception):
    """espeak-ng is not installed, or failed."""


@functools.cache
def executable(name: str) -> str | None:
    """Where ``name`` is on PATH, looked up once per process (not per call or sentence)."""
    return shutil.which(name)


def espeak_available() -> bool:
    return executable(ESPEAK) is not None


async def synthesize(
    text: str, *, voice: str = DEFAULT_VOICE, words_per_minute: int = DEFAULT_WORDS_PER_MINUTE
) -> bytes:
    """``text`` spoken by espeak-ng, as µ-law 8 kHz mono."""
    program = executable(ESPEAK)
    if program is None:
        raise SpeechUnavailable("espeak-ng is not installed (Debian package espeak-ng)")
    process = await asyncio.create_subprocess_exec(
        program,
        "-v",
        voice,
        "-s",
        str(words_per_minute),
        "--stdout",
        "--stdin",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(SYNTHESIS_TIMEOUT_S):
            wav, error = await process.communicate(text.encode())
    except TimeoutError:
        process.kill()
        await process.wait()
        raise SpeechUnavailable("espeak-ng timed out") from None
    if process.returncode != 0 or not wav:
        raise SpeechUnavailable(f"espeak-ng failed: {error.decode(errors='replace').strip()[:200]}")
    return wav_to_ulaw(wav)
