"""A caller's script: what the simulated caller does, step by step.

Steps are short strings, so a script fits on a command line (``--step`` repeated) or in a file (one step
a line, ``#`` comments):

- ``say:<text>`` — speak the text (espeak-ng, synthesised once before the calls start);
- ``wav:<path>`` — play a WAV file (any rate, mono or stereo);
- ``tone:<ms>`` — a voice-like tone of that length (no espeak-ng needed; what the load bench speaks);
- ``dtmf:<digits>`` — press keys;
- ``wait`` — until the bot spoke and then went quiet (its greeting, its answer); ``wait:start`` — until the
  bot starts speaking; ``wait:<seconds>`` — that long; ``wait:hangup`` — until the bot ends the call;
- ``hangup`` — end the call (the end of the script hangs up too).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from prosaas_calls.audio import pcm16_to_ulaw, read_wav_as_ulaw
from prosaas_calls.simulate.caller import SimulatedCall

KINDS = ("say", "wav", "tone", "dtmf", "wait", "hangup")
# The default caller books with the offline receptionist (reason, name, which time, anything else), in
# words its grammars know and espeak-ng's voice carries well over the phone path.
DEFAULT_SCRIPT = (
    "wait",
    "say:Hello, I'd like to book a cleaning.",
    "wait",
    "say:My name is David Brown.",
    "wait",
    "say:The second one, please.",
    "wait",
    "say:No thanks, goodbye.",
    "wait:hangup",
)
Synthesize = Callable[[str], Awaitable[bytes]]


class ScriptError(ValueError):
    pass


@dataclass(frozen=True)
class Step:
    kind: str
    arg: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.arg}" if self.arg else self.kind


def parse_step(text: str) -> Step:
    kind, _, arg = text.strip().partition(":")
    kind, arg = kind.strip().lower(), arg.strip()
    if kind not in KINDS:
        raise ScriptError(f"unknown step {text!r}: expected one of {', '.join(KINDS)}")
    if kind in ("say", "wav", "dtmf", "tone") and not arg:
        raise ScriptError(f"step {kind!r} needs an argument ({kind}:...)")
    if kind == "tone" and not arg.isdigit():
        raise ScriptError(f"tone:{arg}: milliseconds expected")
    if kind == "wait" and arg not in ("", "start", "hangup"):
        try:
            if float(arg) < 0:
                raise ValueError
        except ValueError:
            raise ScriptError(f"wait:{arg}: seconds, 'start' or 'hangup' expected") from None
    if kind == "wav" and not Path(arg).is_file():
        raise ScriptError(f"wav:{arg}: no such file")
    return Step(kind, arg)


def parse_script(lines: Iterable[str]) -> list[Step]:
    return [parse_step(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def tone(ms: int, hz: float = 220.0) -> bytes:
    """A tone with a syllable-like swell (loud enough for any voice-activity detector), as µ-law."""
    count = 8 * ms
    samples = (
        int(9000 * math.sin(2 * math.pi * hz * i / 8000) * (0.6 + 0.4 * math.sin(2 * math.pi * 4 * i / 8000)))
        for i in range(count)
    )
    return pcm16_to_ulaw(b"".join(s.to_bytes(2, "little", signed=True) for s in samples))


async def prepare_audio(steps: Iterable[Step], synthesize: Synthesize) -> dict[Step, bytes]:
    """The audio of every speaking step, made before any call starts (synthesis is not call time)."""
    audio: dict[Step, bytes] = {}
    for step in steps:
        if step in audio:
            continue
        if step.kind == "say":
            audio[step] = await synthesize(step.arg)
        elif step.kind == "wav":
            audio[step] = read_wav_as_ulaw(Path(step.arg))
        elif step.kind == "tone":
            audio[step] = tone(int(step.arg))
    return audio


async def run_script(
    call: SimulatedCall, steps: Iterable[Step], audio: dict[Step, bytes], *, turn_timeout: float = 30.0
) -> None:
    """Play the script on an open stream; stops early when the bot hangs up. Always ends the call."""
    for step in steps:
        if call.closed.is_set():
            break
        if step.kind in ("say", "wav", "tone"):
            await call.say(audio[step], step.arg if step.kind == "say" else str(step))
        elif step.kind == "dtmf":
            await call.dtmf(step.arg)
        elif step.kind == "wait":
            if step.arg == "":
                await call.wait_bot_done(turn_timeout)
            elif step.arg == "start":
                await call.wait_bot_starts(turn_timeout)
            elif step.arg == "hangup":
                await call.wait_hangup(turn_timeout)
            else:
                await call.wait_hangup(float(step.arg))  # that long, unless the bot hangs up
        elif step.kind == "hangup":
            break
    if not call.closed.is_set():
        await call.hangup()
