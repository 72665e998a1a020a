"""Speech recognition for the offline provider: pocketsphinx with its bundled US English model.

:class:`Recognizer` takes the caller's µ-law 8 kHz frames as they arrive, upsamples them to the
model's 16 kHz, finds utterances with pocketsphinx's voice-activity endpointer and decodes each one
incrementally (so the work is spread over the frames, not done at the end) against the grammar of the
dialog's current question. A small grammar per question is what makes an 8 kHz phone line usable
without a network model, and it keeps decoding at a few percent of real time.

Loading the acoustic model takes a few hundred milliseconds, so decoders are pooled and reused by the
next call instead of being built per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pocketsphinx import Decoder, Endpointer

from prosaas_calls.audio import PHONE_RATE, Resampler, ulaw_to_pcm16

MODEL_RATE = 16000
# Starting cepstral means for live normalisation, measured on espeak-ng speech through our phone path
# (8 kHz µ-law upsampled). The model's defaults assume wideband speech; with them a fresh decoder
# mishears its first utterance until live normalisation has caught up.
PHONE_CMN_INIT = "63.6,-0.5,2.6,15.8,-1.7,-1.4,-10.6,-10.9,-14.9,4.3,1.9,-0.7,-5.5"


@dataclass(frozen=True, slots=True)
class SpeechBegan:
    """The caller started talking."""


@dataclass(frozen=True, slots=True)
class Utterance:
    """The caller stopped talking; ``text`` is what the grammar matched ("" when nothing matched)."""

    text: str


RecognizerEvent = SpeechBegan | Utterance


# Builds the JSGF grammars (name → text) given a test of which words the model can pronounce.
GrammarFactory = Callable[[Callable[[str], bool]], Mapping[str, str]]


class DecoderPool:
    """Decoders with every grammar of the dialog loaded, handed out one per call."""

    def __init__(self, grammar_factory: GrammarFactory) -> None:
        self._grammar_factory = grammar_factory
        self._grammars: dict[str, str] | None = None
        self._idle: list[Decoder] = []

    @property
    def grammars(self) -> Mapping[str, str]:
        if self._grammars is None:
            self.release(self.acquire())
        assert self._grammars is not None
        return self._grammars

    def acquire(self) -> Decoder:
        if self._idle:
            return self._idle.pop()
        decoder = Decoder(samprate=MODEL_RATE, cmninit=PHONE_CMN_INIT, loglevel="FATAL")
        if self._grammars is None:
            self._grammars = dict(self._grammar_factory(lambda word: decoder.lookup_word(word) is not None))
        for name, jsgf in self._grammars.items():
            decoder.add_jsgf_string(name, jsgf)
        return decoder

    def release(self, decoder: Decoder) -> None:
        self._idle.append(decoder)

    def warm(self) -> None:
        """Load one decoder ahead of the first call (the model takes ~0.4 s to load)."""
        if not self._idle:
            self.release(self.acquire())


class Recognizer:
    """One call's recogniser: feed µ-law frames, get :data:`RecognizerEvent`s."""

    def __init__(self, pool: DecoderPool) -> None:
        self._pool = pool
        self._decoder: Decoder | None = pool.acquire()
        self._endpointer = Endpointer(sample_rate=MODEL_RATE)
        self._resampler = Resampler(PHONE_RATE, MODEL_RATE)
        self._pending = bytearray()
        self.grammar = next(iter(pool.grammars))

    def listen_for(self, grammar: str) -> None:
        """Decode the next utterance with ``grammar`` (the one in progress keeps its own)."""
        if grammar not in self._pool.grammars:
            raise KeyError(grammar)
        self.grammar = grammar

    def feed(self, mulaw: bytes) -> list[RecognizerEvent]:
        decoder = self._decoder
        if decoder is None:
            return []
        self._pending += self._resampler.convert(ulaw_to_pcm16(mulaw))
        size = self._endpointer.frame_bytes
        events: list[RecognizerEvent] = []
        while len(self._pending) >= size:
            frame = bytes(self._pending[:size])
            del self._pending[:size]
            was_speaking = self._endpointer.in_speech
            speech = self._endpointer.process(frame)
            if speech is None:
                continue
            if not was_speaking:
                decoder.activate_search(self.grammar)
                decoder.start_utt()
                events.append(SpeechBegan())
            decoder.process_raw(speech, False, False)
            if not self._endpointer.in_speech:
                decoder.end_utt()
                hypothesis = decoder.hyp()
                events.append(Utterance(hypothesis.hypstr.strip() if hypothesis else ""))
        return events

    def close(self) -> None:
        decoder, self._decoder = self._decoder, None
        if decoder is None:
            return
        if self._endpointer.in_speech:
            decoder.end_utt()
        self._pool.release(decoder)
