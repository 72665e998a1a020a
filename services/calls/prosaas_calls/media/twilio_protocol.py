"""Twilio Media Streams wire protocol: parse what Twilio sends on the stream socket, build what we send.

Pure and synchronous, because it runs for every 20 ms frame of every live call: no I/O, no logging, and
``parse_message`` never raises — a peer's bad frame is a ``Malformed`` value the session counts and
drops, never an exception that would end the call.

Message shapes follow Twilio's "Media Streams - WebSocket Messages" reference. Twilio sends
``sequenceNumber``, ``media.chunk`` and ``media.timestamp`` as decimal strings; they are parsed to
``int`` here (plain JSON integers are accepted too). ``sequenceNumber`` is only an ordering hint, so a
message without it still parses (``None``); every other documented field is required.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, TypeAlias

FRAME_MS: Final = 20
FRAME_BYTES: Final = 160  # 20 ms of 8 kHz, 8-bit µ-law
MULAW_SILENCE: Final = 0xFF

MAX_MESSAGE_CHARS: Final = 64 * 1024
MAX_PAYLOAD_BYTES: Final = 16 * 1024
# Base64 text longer than this cannot decode to MAX_PAYLOAD_BYTES or fewer: refuse before decoding.
_MAX_PAYLOAD_B64_CHARS: Final = 4 * ((MAX_PAYLOAD_BYTES + 2) // 3)
# Twilio counters fit easily; the bound keeps int() away from pathological digit strings.
_MAX_COUNTER_DIGITS: Final = 18
_MAX_REPORTED_EVENT_CHARS: Final = 40

DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")
MEDIA_TRACKS: Final = frozenset({"inbound", "outbound"})

_EMPTY_PARAMS: Final[Mapping[str, str]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Connected:
    """First message on the socket: names the protocol the rest of the stream speaks."""

    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class MediaFormat:
    encoding: str
    sample_rate: int
    channels: int

    @property
    def is_mulaw_8k_mono(self) -> bool:
        return self.encoding == "audio/x-mulaw" and self.sample_rate == 8000 and self.channels == 1


@dataclass(frozen=True, slots=True)
class Start:
    """Stream metadata, sent once after ``connected``; ``custom_parameters`` come from the TwiML."""

    stream_sid: str
    sequence_number: int | None
    account_sid: str
    call_sid: str
    tracks: tuple[str, ...]
    media_format: MediaFormat
    custom_parameters: Mapping[str, str] = field(hash=False)


@dataclass(frozen=True, slots=True)
class Media:
    """One chunk of audio; ``payload`` is the decoded µ-law, ``timestamp`` ms since the stream began."""

    stream_sid: str
    sequence_number: int | None
    track: str
    chunk: int
    timestamp: int
    payload: bytes = field(repr=False)  # 160 bytes of audio per frame would swamp any log line


@dataclass(frozen=True, slots=True)
class Mark:
    """Twilio's echo of a mark we sent: the audio queued before it has played (or was cleared)."""

    stream_sid: str
    sequence_number: int | None
    name: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    stream_sid: str
    sequence_number: int | None
    track: str
    digit: str


@dataclass(frozen=True, slots=True)
class Stop:
    """Last message: the stream stopped or the call ended."""

    stream_sid: str
    sequence_number: int | None
    account_sid: str
    call_sid: str


@dataclass(frozen=True, slots=True)
class Malformed:
    """A message we could not use. ``event`` is the (truncated) event name when one was readable."""

    reason: str
    event: str | None = None

    @property
    def is_unknown_event(self) -> bool:
        """A well-formed envelope naming an event we do not handle (counted apart from garbage)."""
        return self.event is not None and self.event not in INBOUND_EVENTS


InboundEvent: TypeAlias = Connected | Start | Media | Mark | Dtmf | Stop


@dataclass(slots=True)
class StreamCounters:
    """Per-stream tallies owned by the call session and reported when the call ends."""

    frames_in: int = 0
    frames_out: int = 0
    malformed: int = 0
    unknown_events: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Invalid(Exception):
    """Internal: a field failed validation; becomes ``Malformed`` at the ``parse_message`` boundary."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- field readers -------------------------------------------------------------------------------------


def _obj(msg: dict[str, Any], key: str) -> dict[str, Any]:
    value = msg.get(key)
    if type(value) is not dict:
        raise _Invalid(f"{key}: missing" if value is None else f"{key}: not an object")
    return value


def _str(msg: dict[str, Any], key: str, where: str = "") -> str:
    value = msg.get(key)
    if type(value) is not str:
        name = f"{where}{key}"
        raise _Invalid(f"{name}: missing" if value is None else f"{name}: not a string")
    return value


def _counter(value: object, name: str) -> int:
    """A non-negative integer, sent by Twilio as a decimal string ("12") or a JSON integer."""
    if type(value) is str:
        if 0 < len(value) <= _MAX_COUNTER_DIGITS and value.isascii() and value.isdecimal():
            return int(value)
    elif type(value) is int and value >= 0:
        return value
    if value is None:
        raise _Invalid(f"{name}: missing")
    raise _Invalid(f"{name}: not a non-negative integer")


def _sequence(msg: dict[str, Any]) -> int | None:
    value = msg.get("sequenceNumber")
    return None if value is None else _counter(value, "sequenceNumber")


def _payload(text: object) -> bytes:
    if type(text) is not str:
        raise _Invalid("media.payload: missing" if text is None else "media.payload: not a string")
    if len(text) > _MAX_PAYLOAD_B64_CHARS:
        raise _Invalid("media.payload: too large")
    try:
        data = binascii.a2b_base64(text, strict_mode=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise _Invalid("media.payload: bad base64") from None
    if not data:
        raise _Invalid("media.payload: empty")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise _Invalid("media.payload: too large")
    return data


# --- per-event parsers ---------------------------------------------------------------------------------


def _parse_connected(msg: dict[str, Any]) -> Connected:
    return Connected(protocol=_str(msg, "protocol"), version=_str(msg, "version"))


def _parse_start(msg: dict[str, Any]) -> Start:
    stream_sid = _str(msg, "streamSid")
    start = _obj(msg, "start")
    inner_sid = start.get("streamSid")
    if inner_sid is not None and inner_sid != stream_sid:
        raise _Invalid("start.streamSid: does not match streamSid")
    tracks = start.get("tracks")
    if type(tracks) is not list or not all(type(t) is str for t in tracks):
        raise _Invalid("start.tracks: not a list of strings")
    fmt = _obj(start, "mediaFormat")
    encoding = _str(fmt, "encoding", "start.mediaFormat.")
    sample_rate = _counter(fmt.get("sampleRate"), "start.mediaFormat.sampleRate")
    channels = _counter(fmt.get("channels"), "start.mediaFormat.channels")
    raw_params = start.get("customParameters")
    params: Mapping[str, str] = _EMPTY_PARAMS
    if raw_params is not None:
        if type(raw_params) is not dict or not all(type(v) is str for v in raw_params.values()):
            raise _Invalid("start.customParameters: not an object of strings")
        params = MappingProxyType(dict(raw_params))
    return Start(
        stream_sid=stream_sid,
        sequence_number=_sequence(msg),
        account_sid=_str(start, "accountSid", "start."),
        call_sid=_str(start, "callSid", "start."),
        tracks=tuple(tracks),
        media_format=MediaFormat(encoding=encoding, sample_rate=sample_rate, channels=channels),
        custom_parameters=params,
    )


def _parse_media(msg: dict[str, Any]) -> Media:
    stream_sid = _str(msg, "streamSid")
    media = _obj(msg, "media")
    track = media.get("track")
    if type(track) is not str or track not in MEDIA_TRACKS:  # type check first: lists are unhashable
        raise _Invalid("media.track: missing" if track is None else "media.track: not inbound/outbound")
    return Media(
        stream_sid=stream_sid,
        sequence_number=_sequence(msg),
        track=track,
        chunk=_counter(media.get("chunk"), "media.chunk"),
        timestamp=_counter(media.get("timestamp"), "media.timestamp"),
        payload=_payload(media.get("payload")),
    )


def _parse_mark(msg: dict[str, Any]) -> Mark:
    stream_sid = _str(msg, "streamSid")
    name = _str(_obj(msg, "mark"), "name", "mark.")
    return Mark(stream_sid=stream_sid, sequence_number=_sequence(msg), name=name)


def _parse_dtmf(msg: dict[str, Any]) -> Dtmf:
    stream_sid = _str(msg, "streamSid")
    dtmf = _obj(msg, "dtmf")
    track = _str(dtmf, "track", "dtmf.")
    digit = _str(dtmf, "digit", "dtmf.")
    if digit not in DTMF_DIGITS:
        raise _Invalid("dtmf.digit: not a DTMF key")
    return Dtmf(stream_sid=stream_sid, sequence_number=_sequence(msg), track=track, digit=digit)


def _parse_stop(msg: dict[str, Any]) -> Stop:
    stream_sid = _str(msg, "streamSid")
    stop = _obj(msg, "stop")
    return Stop(
        stream_sid=stream_sid,
        sequence_number=_sequence(msg),
        account_sid=_str(stop, "accountSid", "stop."),
        call_sid=_str(stop, "callSid", "stop."),
    )


_PARSERS: Final[dict[str, Callable[[dict[str, Any]], InboundEvent]]] = {
    "media": _parse_media,  # first: by far the most frequent
    "mark": _parse_mark,
    "dtmf": _parse_dtmf,
    "start": _parse_start,
    "connected": _parse_connected,
    "stop": _parse_stop,
}
INBOUND_EVENTS: Final = frozenset(_PARSERS)


def parse_message(text: str | bytes) -> InboundEvent | Malformed:
    """Parse one WebSocket message from Twilio. Never raises: anything unusable is ``Malformed``."""
    if len(text) > MAX_MESSAGE_CHARS:
        return Malformed("message too large")
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, int digit limit
        return Malformed("invalid json")
    if type(msg) is not dict:
        return Malformed("not a json object")
    event = msg.get("event")
    if type(event) is not str:
        return Malformed("event: missing" if event is None else "event: not a string")
    parser = _PARSERS.get(event)
    if parser is None:
        shown = event[:_MAX_REPORTED_EVENT_CHARS]
        return Malformed(f"unknown event {shown!r}", event=shown)
    try:
        return parser(msg)
    except _Invalid as exc:
        return Malformed(exc.reason, event=event)


# --- builders (us -> Twilio) -----------------------------------------------------------------------------


# One compact encoder, built once: ``json.dumps`` with ``separators`` builds a new encoder per call.
_encode_compact: Final = json.JSONEncoder(separators=(",", ":")).encode


@lru_cache(maxsize=1024)
def _media_prefix(stream_sid: str) -> str:
    # The stream sid is fixed for a call, so its JSON escaping is done once per stream, not per frame.
    return '{"event":"media","streamSid":' + json.dumps(stream_sid) + ',"media":{"payload":"'


def media_message(stream_sid: str, mulaw: bytes) -> str:
    """A ``media`` message playing ``mulaw`` (8 kHz µ-law) on the call; base64 needs no JSON escaping."""
    return _media_prefix(stream_sid) + binascii.b2a_base64(mulaw, newline=False).decode("ascii") + '"}}'


def mark_message(stream_sid: str, name: str) -> str:
    """A ``mark`` message: Twilio echoes it back once the audio sent before it has played."""
    return _encode_compact({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    """A ``clear`` message: Twilio drops buffered audio and echoes any pending marks (barge-in)."""
    return _encode_compact({"event": "clear", "streamSid": stream_sid})


def frames(mulaw: bytes) -> Iterator[bytes]:
    """Split µ-law audio into 20 ms frames; the last is padded with µ-law silence to a full frame."""
    view = memoryview(mulaw)
    for start in range(0, len(view), FRAME_BYTES):
        frame = bytes(view[start : start + FRAME_BYTES])
        if len(frame) < FRAME_BYTES:
            frame += bytes([MULAW_SILENCE]) * (FRAME_BYTES - len(frame))
        yield frame
