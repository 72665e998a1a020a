"""Twilio Media Streams protocol: every documented inbound message parses to its event, our outbound
messages have exactly the documented shape, bad input of any kind is ``Malformed`` with a reason (never an
exception), and ``frames()`` cuts audio into padded 20 ms frames.

Samples follow Twilio's "Media Streams - WebSocket Messages" reference; the docs abbreviate the media
payload, so the samples here carry a whole 160-byte frame.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prosaas_calls.media import (
    FRAME_BYTES,
    FRAME_MS,
    Connected,
    Dtmf,
    Malformed,
    Mark,
    Media,
    MediaFormat,
    Start,
    Stop,
    StreamCounters,
    clear_message,
    frames,
    mark_message,
    media_message,
    parse_message,
)
from prosaas_calls.media.twilio_protocol import MAX_MESSAGE_CHARS, MAX_PAYLOAD_BYTES

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
CALL_SID = "CA" + "fedcba9876543210" * 2
STREAM_SID = "MZ" + "00112233445566778899aabbccddeeff"
# 20 ms of a µ-law tone: 160 bytes cycling through a few codes.
FRAME = bytes([0x9E, 0x8F, 0x89, 0x86, 0x86, 0x89, 0x8E, 0x9C] * 20)
FRAME_B64 = base64.b64encode(FRAME).decode()


def connected_sample() -> dict[str, Any]:
    return {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def start_sample() -> dict[str, Any]:
    return {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT_SID,
            "streamSid": STREAM_SID,
            "callSid": CALL_SID,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"},
        },
        "streamSid": STREAM_SID,
    }


def media_sample(track: str = "inbound") -> dict[str, Any]:
    return {
        "event": "media",
        "sequenceNumber": "4",
        "media": {"track": track, "chunk": "2", "timestamp": "5", "payload": FRAME_B64},
        "streamSid": STREAM_SID,
    }


def mark_sample() -> dict[str, Any]:
    return {"event": "mark", "sequenceNumber": "4", "streamSid": STREAM_SID, "mark": {"name": "my label"}}


def dtmf_sample() -> dict[str, Any]:
    return {
        "event": "dtmf",
        "streamSid": STREAM_SID,
        "sequenceNumber": "5",
        "dtmf": {"track": "inbound_track", "digit": "1"},
    }


def stop_sample() -> dict[str, Any]:
    return {
        "event": "stop",
        "sequenceNumber": "5",
        "stop": {"accountSid": ACCOUNT_SID, "callSid": CALL_SID},
        "streamSid": STREAM_SID,
    }


SAMPLES = [connected_sample, start_sample, media_sample, mark_sample, dtmf_sample, stop_sample]


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(
        message, indent=2
    )  # Twilio's own samples are pretty-printed; whitespace must not matter


# --- inbound: documented samples ------------------------------------------------------------------------


def test_connected() -> None:
    assert parse_message(text_of(connected_sample())) == Connected(protocol="Call", version="1.0.0")


def test_start() -> None:
    event = parse_message(text_of(start_sample()))
    assert isinstance(event, Start)
    assert event.stream_sid == STREAM_SID
    assert event.sequence_number == 1
    assert (event.account_sid, event.call_sid) == (ACCOUNT_SID, CALL_SID)
    assert event.tracks == ("inbound",)
    assert event.media_format == MediaFormat(encoding="audio/x-mulaw", sample_rate=8000, channels=1)
    assert event.media_format.is_mulaw_8k_mono
    assert dict(event.custom_parameters) == {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"}


def test_start_without_custom_parameters_and_other_format() -> None:
    message = start_sample()
    del message["start"]["customParameters"]
    message["start"]["mediaFormat"]["sampleRate"] = 16000
    event = parse_message(json.dumps(message))
    assert isinstance(event, Start)
    assert dict(event.custom_parameters) == {}
    assert not event.media_format.is_mulaw_8k_mono


@pytest.mark.parametrize("track", ["inbound", "outbound"])
def test_media(track: str) -> None:
    event = parse_message(text_of(media_sample(track)))
    assert event == Media(
        stream_sid=STREAM_SID, sequence_number=4, track=track, chunk=2, timestamp=5, payload=FRAME
    )
    assert isinstance(event, Media)
    assert type(event.payload) is bytes
    assert "payload" not in repr(event)


def test_mark() -> None:
    assert parse_message(text_of(mark_sample())) == Mark(
        stream_sid=STREAM_SID, sequence_number=4, name="my label"
    )


def test_dtmf() -> None:
    assert parse_message(text_of(dtmf_sample())) == Dtmf(
        stream_sid=STREAM_SID, sequence_number=5, track="inbound_track", digit="1"
    )


def test_stop() -> None:
    assert parse_message(text_of(stop_sample())) == Stop(
        stream_sid=STREAM_SID, sequence_number=5, account_sid=ACCOUNT_SID, call_sid=CALL_SID
    )


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.__name__)
def test_bytes_parse_like_text(sample: Any) -> None:
    text = json.dumps(sample())
    assert parse_message(text.encode()) == parse_message(text)
    assert not isinstance(parse_message(text), Malformed)


def test_counters_as_json_integers_and_sequence_number_optional() -> None:
    message = media_sample()
    message["media"].update(chunk=7, timestamp=140)
    del message["sequenceNumber"]
    event = parse_message(json.dumps(message))
    assert isinstance(event, Media)
    assert (event.sequence_number, event.chunk, event.timestamp) == (None, 7, 140)


def test_payload_up_to_the_limit_is_accepted() -> None:
    message = media_sample()
    message["media"]["payload"] = base64.b64encode(b"\x7f" * MAX_PAYLOAD_BYTES).decode()
    event = parse_message(json.dumps(message))
    assert isinstance(event, Media)
    assert len(event.payload) == MAX_PAYLOAD_BYTES


# --- inbound: malformed ---------------------------------------------------------------------------------


def with_change(sample: Any, path: str, value: Any) -> str:
    """The sample with the field at dotted ``path`` set to ``value`` (or removed when value is DROP)."""
    message = sample()
    *parents, last = path.split(".")
    node = message
    for key in parents:
        node = node[key]
    if value is DROP:
        del node[last]
    else:
        node[last] = value
    return json.dumps(message)


DROP = object()

MALFORMED_CASES: list[tuple[str | bytes, str]] = [
    ("", "invalid json"),
    ('{"event": "media", "streamSid": "MZ', "invalid json"),
    (b'{"event": "\xff\xfe"}', "invalid json"),
    ("[" * 20_000 + "]" * 20_000, "invalid json"),
    ('{"event": "media", "n": ' + "9" * 5000 + "}", "invalid json"),
    ("[]", "not a json object"),
    ('"media"', "not a json object"),
    ("null", "not a json object"),
    ("{}", "event: missing"),
    ('{"event": 3}', "event: not a string"),
    ("x" * (MAX_MESSAGE_CHARS + 1), "message too large"),
    (b"x" * (MAX_MESSAGE_CHARS + 1), "message too large"),
    (with_change(connected_sample, "version", 1), "version: not a string"),
    (with_change(start_sample, "streamSid", DROP), "streamSid: missing"),
    (with_change(start_sample, "start", "yes"), "start: not an object"),
    (with_change(start_sample, "start.streamSid", "MZother"), "start.streamSid: does not match streamSid"),
    (with_change(start_sample, "start.tracks", "inbound"), "start.tracks: not a list of strings"),
    (with_change(start_sample, "start.tracks", ["inbound", 2]), "start.tracks: not a list of strings"),
    (with_change(start_sample, "start.callSid", DROP), "start.callSid: missing"),
    (with_change(start_sample, "start.mediaFormat", DROP), "mediaFormat: missing"),
    (with_change(start_sample, "start.mediaFormat.sampleRate", "fast"), "start.mediaFormat.sampleRate: not"),
    (with_change(start_sample, "start.customParameters", {"a": 1}), "start.customParameters: not an object"),
    (with_change(start_sample, "sequenceNumber", "-1"), "sequenceNumber: not a non-negative integer"),
    (with_change(media_sample, "streamSid", 12), "streamSid: not a string"),
    (with_change(media_sample, "media", DROP), "media: missing"),
    (with_change(media_sample, "media.track", "both"), "media.track: not inbound/outbound"),
    (with_change(media_sample, "media.track", ["inbound"]), "media.track: not inbound/outbound"),
    (with_change(media_sample, "media.track", DROP), "media.track: missing"),
    (with_change(media_sample, "media.chunk", DROP), "media.chunk: missing"),
    (with_change(media_sample, "media.chunk", "1.5"), "media.chunk: not a non-negative integer"),
    (with_change(media_sample, "media.chunk", True), "media.chunk: not a non-negative integer"),
    (with_change(media_sample, "media.timestamp", "\u0665"), "media.timestamp: not a non-negative integer"),
    (with_change(media_sample, "media.timestamp", "9" * 40), "media.timestamp: not a non-negative integer"),
    (with_change(media_sample, "media.timestamp", 5.0), "media.timestamp: not a non-negative integer"),
    (with_change(media_sample, "media.payload", DROP), "media.payload: missing"),
    (with_change(media_sample, "media.payload", ["AAAA"]), "media.payload: not a string"),
    (with_change(media_sample, "media.payload", "no+JhoaJjpzS..."), "media.payload: bad base64"),
    (with_change(media_sample, "media.payload", "AAA"), "media.payload: bad base64"),
    (with_change(media_sample, "media.payload", "AA AA"), "media.payload: bad base64"),
    (with_change(media_sample, "media.payload", "ÀÀÀÀ"), "media.payload: bad base64"),
    (with_change(media_sample, "media.payload", ""), "media.payload: empty"),
    (
        with_change(
            media_sample, "media.payload", base64.b64encode(b"\0" * (MAX_PAYLOAD_BYTES + 1)).decode()
        ),
        "media.payload: too large",
    ),
    (with_change(media_sample, "media.payload", "A" * 40_000), "media.payload: too large"),
    (with_change(mark_sample, "mark", {}), "mark.name: missing"),
    (with_change(mark_sample, "mark.name", None), "mark.name: missing"),
    (with_change(dtmf_sample, "dtmf.digit", "12"), "dtmf.digit: not a DTMF key"),
    (with_change(dtmf_sample, "dtmf.digit", "x"), "dtmf.digit: not a DTMF key"),
    (with_change(dtmf_sample, "dtmf.track", DROP), "dtmf.track: missing"),
    (with_change(stop_sample, "stop", DROP), "stop: missing"),
    (with_change(stop_sample, "stop.accountSid", 5), "stop.accountSid: not a string"),
]


@pytest.mark.parametrize(("text", "reason"), MALFORMED_CASES, ids=[r for _, r in MALFORMED_CASES])
def test_malformed_gives_reason(text: str | bytes, reason: str) -> None:
    result = parse_message(text)
    assert isinstance(result, Malformed)
    assert result.reason.startswith(reason)
    assert not result.is_unknown_event


def test_malformed_known_event_keeps_its_name() -> None:
    result = parse_message(with_change(media_sample, "media.payload", "AAA"))
    assert result == Malformed("media.payload: bad base64", event="media")


def test_unknown_event_is_told_apart_and_truncated() -> None:
    result = parse_message(json.dumps({"event": "transcription", "streamSid": STREAM_SID}))
    assert result == Malformed("unknown event 'transcription'", event="transcription")
    assert isinstance(result, Malformed)
    assert result.is_unknown_event

    long = parse_message(json.dumps({"event": "e" * 5000}))
    assert isinstance(long, Malformed)
    assert long.is_unknown_event
    assert long.event == "e" * 40
    assert len(long.reason) < 80


# --- inbound: property tests ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


def paths_of(node: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for key, value in node.items():
        found.append((*prefix, key))
        if isinstance(value, dict):
            found.extend(paths_of(value, (*prefix, key)))
    return found


@st.composite
def mutated_samples(draw: st.DrawFn) -> str:
    """A documented sample with one to three of its fields replaced by arbitrary JSON or dropped."""
    message = draw(st.sampled_from(SAMPLES))()
    for _ in range(draw(st.integers(1, 3))):
        *parents, last = draw(st.sampled_from(paths_of(message)))
        node = message
        for key in parents:
            node = node[key] if isinstance(node, dict) else None
        if isinstance(node, dict):
            if draw(st.booleans()):
                node[last] = draw(json_values)
            else:
                node.pop(last, None)
    return json.dumps(message)


@st.composite
def truncated_samples(draw: st.DrawFn) -> str:
    text = json.dumps(draw(st.sampled_from(SAMPLES))())
    return text[: draw(st.integers(min_value=0, max_value=len(text)))]


@st.composite
def deep_nesting(draw: st.DrawFn) -> str:
    depth = draw(st.integers(min_value=1, max_value=30_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"event":', "}")]))
    return opener * depth + (closer * depth if draw(st.booleans()) else "")


garbage = st.one_of(
    mutated_samples(),
    mutated_samples().map(lambda s: s.encode()),
    truncated_samples(),
    deep_nesting(),
    json_values.map(json.dumps),
    st.text(),
    st.binary(),
    st.text(min_size=1, max_size=3).map(lambda s: s * 30_000),
)


@settings(max_examples=500, deadline=None)
@given(garbage)
def test_parse_never_raises(text: str | bytes) -> None:
    result = parse_message(text)
    assert isinstance(result, Malformed | Connected | Start | Media | Mark | Dtmf | Stop)
    if isinstance(result, Malformed):
        assert result.reason


@settings(max_examples=200, deadline=None)
@given(audio=st.binary(min_size=1, max_size=MAX_PAYLOAD_BYTES), chunk=st.integers(0, 10**12))
def test_any_payload_round_trips(audio: bytes, chunk: int) -> None:
    message = media_sample()
    message["media"].update(payload=base64.b64encode(audio).decode(), chunk=str(chunk), timestamp=chunk * 20)
    event = parse_message(json.dumps(message))
    assert isinstance(event, Media)
    assert (event.payload, event.chunk, event.timestamp) == (audio, chunk, chunk * 20)


# --- outbound builders ----------------------------------------------------------------------------------


def test_media_message_has_documented_shape() -> None:
    sent = json.loads(media_message(STREAM_SID, FRAME))
    assert sent == {"event": "media", "streamSid": STREAM_SID, "media": {"payload": FRAME_B64}}


def test_mark_message_has_documented_shape_and_parses_as_its_echo() -> None:
    text = mark_message(STREAM_SID, "my label")
    assert json.loads(text) == {"event": "mark", "streamSid": STREAM_SID, "mark": {"name": "my label"}}
    assert parse_message(text) == Mark(stream_sid=STREAM_SID, sequence_number=None, name="my label")


def test_clear_message_has_documented_shape() -> None:
    assert json.loads(clear_message(STREAM_SID)) == {"event": "clear", "streamSid": STREAM_SID}


def test_builders_escape_odd_strings() -> None:
    sid = 'MZ"\\\n\u2028é'
    assert json.loads(media_message(sid, b"\x00\xff"))["streamSid"] == sid
    assert json.loads(mark_message(sid, 'turn "3"\n'))["mark"]["name"] == 'turn "3"\n'
    assert json.loads(clear_message(sid))["streamSid"] == sid


@settings(max_examples=200, deadline=None)
@given(sid=st.text(max_size=40), audio=st.binary(max_size=2 * FRAME_BYTES))
def test_media_message_round_trips(sid: str, audio: bytes) -> None:
    sent = json.loads(media_message(sid, audio))
    assert sent["event"] == "media"
    assert sent["streamSid"] == sid
    assert base64.b64decode(sent["media"]["payload"], validate=True) == audio


# --- frames and counters --------------------------------------------------------------------------------


def test_frame_constants_agree() -> None:
    assert FRAME_BYTES == 8000 * FRAME_MS // 1000 == 160


def test_frames_split_and_pad() -> None:
    assert list(frames(b"")) == []
    assert list(frames(FRAME)) == [FRAME]
    audio = bytes(range(200))
    assert list(frames(audio)) == [audio[:160], audio[160:] + b"\xff" * 120]
    assert list(frames(bytes(480))) == [bytes(160)] * 3


@given(st.binary(max_size=1000))
def test_frames_cover_audio_exactly(audio: bytes) -> None:
    out = list(frames(audio))
    assert all(type(f) is bytes and len(f) == FRAME_BYTES for f in out)
    assert len(out) == -(-len(audio) // FRAME_BYTES)
    joined = b"".join(out)
    assert joined[: len(audio)] == audio
    assert set(joined[len(audio) :]) <= {0xFF}


def test_stream_counters() -> None:
    counters = StreamCounters()
    assert counters.as_dict() == {"frames_in": 0, "frames_out": 0, "malformed": 0, "unknown_events": 0}
    counters.frames_in += 3
    counters.unknown_events += 1
    assert counters.as_dict() == {"frames_in": 3, "frames_out": 0, "malformed": 0, "unknown_events": 1}
