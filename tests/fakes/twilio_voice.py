"""A local Twilio Voice API: live-call updates, call recordings and their media.

* ``POST /2010-04-01/Accounts/{AC}/Calls/{CA}.json`` — update a live call (``Twiml``, ``Url`` or
  ``Status``); the request is kept, the answer is Twilio's call JSON. A call listed as ended answers
  Twilio's 400 code 21220 ("Call is not in-progress").
* ``POST /2010-04-01/Accounts/{AC}/Calls/{CA}/Recordings.json`` — start a recording: 201 with
  ``RE…``; its media is a real WAV (8 kHz, 16-bit, two channels) of ``wav_seconds``.
* ``GET /2010-04-01/Accounts/{AC}/Recordings/{RE}.wav`` — the media (404 code 20404 when unknown).
* ``DELETE /2010-04-01/Accounts/{AC}/Recordings/{RE}.json`` — 204.

Basic auth is checked like Twilio (401, code 20003), with the messages fake's helpers.

Test controls (not Twilio's): ``GET /_fake/recordings`` and ``GET /_fake/updates`` return what was
asked; ``POST /_fake/config`` sets ``fail_next`` (that many REST calls answer ``fail_status``),
``media_fail_next`` / ``media_fail_status`` (the same for media downloads), ``ended`` (call sids no
longer in progress), ``wav_seconds`` and ``deliver_base`` (where status callbacks are POSTed: the
callback URL's scheme and host are replaced by it, the signature still covers the URL as given, as
Twilio signs it); ``POST /_fake/recordings/{RE}/complete`` posts that recording's ``completed``
callback, signed with the auth token, and returns the callback's status code.
"""

from __future__ import annotations

import io
import itertools
import math
import struct
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from tests.fakes.twilio_messages import FakeState, authorised, twilio_error
from tests.support import serving

API = "/2010-04-01/Accounts/{account}"


def make_wav(seconds: float, rate: int = 8000) -> bytes:
    """A two-channel 16-bit WAV with a different tone per channel (deterministic bytes)."""
    frames = bytearray()
    for n in range(int(seconds * rate)):
        left = int(8000 * math.sin(2 * math.pi * 440 * n / rate))
        right = int(8000 * math.sin(2 * math.pi * 660 * n / rate))
        frames += struct.pack("<hh", left, right)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(frames))
    return out.getvalue()


@dataclass
class FakeVoiceState:
    account_sid: str
    auth_token: str
    recordings: dict[str, dict[str, Any]] = field(default_factory=dict)
    updates: list[dict[str, str]] = field(default_factory=list)
    ended: set[str] = field(default_factory=set)
    fail_next: int = 0
    fail_status: int = 503
    media_fail_next: int = 0
    media_fail_status: int = 503
    media_requests: int = 0
    wav_seconds: float = 1.0
    deliver_base: str | None = None
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add_recording(self, call_sid: str, **values: Any) -> str:
        """A recording of ``call_sid`` (as if started through the API); its sid."""
        sid = f"RE{next(self.counter):032x}"
        self.recordings[sid] = {
            "sid": sid,
            "call_sid": call_sid,
            "status": "in-progress",
            "channels": 2,
            "source": "StartCallRecordingAPI",
            "status_callback": None,
            "status_callback_event": None,
            "deleted": False,
            "_created": datetime.now(UTC),
            "_wav": make_wav(self.wav_seconds),
            **values,
        }
        return sid

    def callback_form(self, recording_sid: str, status: str = "completed") -> dict[str, str]:
        record = self.recordings[recording_sid]
        return {
            "AccountSid": self.account_sid,
            "CallSid": record["call_sid"],
            "RecordingSid": recording_sid,
            "RecordingUrl": f"https://api.twilio.com{API.format(account=self.account_sid)}"
            f"/Recordings/{recording_sid}",
            "RecordingStatus": status,
            "RecordingDuration": str(int(self.wav_seconds)),
            "RecordingChannels": "2",
            "RecordingStartTime": format_datetime(record["_created"]),
            "RecordingSource": "StartCallRecordingAPI",
            "RecordingTrack": "both",
        }

    def sign(self, url: str, form: dict[str, str]) -> str:
        return str(RequestValidator(self.auth_token).compute_signature(url, form))


def build_app(state: FakeVoiceState) -> Starlette:
    credentials = FakeState(state.account_sid, state.auth_token)  # what the messages fake checks

    def refused(request: Request) -> JSONResponse | None:
        if not authorised(request, credentials) or request.path_params["account"] != state.account_sid:
            return twilio_error(401, 20003, "Authenticate")
        if state.fail_next > 0:
            state.fail_next -= 1
            return twilio_error(state.fail_status, 20500, "Internal Server Error")
        return None

    async def form_of(request: Request) -> dict[str, str]:
        return dict(parse_qsl((await request.body()).decode()))

    def not_in_progress(call_sid: str) -> JSONResponse:
        return twilio_error(400, 21220, f"Call {call_sid} is not in-progress. Cannot redirect.")

    async def update_call(request: Request) -> JSONResponse:
        if (error := refused(request)) is not None:
            return error
        call_sid = request.path_params["call"]
        form = await form_of(request)
        if not any(form.get(name) for name in ("Twiml", "Url", "Status")):
            return twilio_error(400, 21205, "A 'Url', 'Twiml' or 'Status' is required")
        if call_sid in state.ended:
            return not_in_progress(call_sid)
        state.updates.append({"call_sid": call_sid, **form})
        return JSONResponse(
            {
                "sid": call_sid,
                "account_sid": state.account_sid,
                "status": form.get("Status", "in-progress"),
                "date_updated": format_datetime(datetime.now(UTC)),
            }
        )

    async def start_recording(request: Request) -> JSONResponse:
        if (error := refused(request)) is not None:
            return error
        call_sid = request.path_params["call"]
        form = await form_of(request)
        if call_sid in state.ended:
            return not_in_progress(call_sid)
        sid = state.add_recording(
            call_sid,
            channels=2 if form.get("RecordingChannels") == "dual" else 1,
            status_callback=form.get("RecordingStatusCallback"),
            status_callback_event=form.get("RecordingStatusCallbackEvent"),
        )
        now = state.recordings[sid]["_created"]
        return JSONResponse(
            {
                "sid": sid,
                "account_sid": state.account_sid,
                "call_sid": call_sid,
                "status": "in-progress",
                "channels": state.recordings[sid]["channels"],
                "source": "StartCallRecordingAPI",
                "date_created": format_datetime(now),
                "uri": f"{API.format(account=state.account_sid)}/Calls/{call_sid}/Recordings/{sid}.json",
            },
            status_code=201,
        )

    async def media(request: Request) -> Response:
        if not authorised(request, credentials) or request.path_params["account"] != state.account_sid:
            return twilio_error(401, 20003, "Authenticate")
        state.media_requests += 1
        if state.media_fail_next > 0:
            state.media_fail_next -= 1
            return twilio_error(state.media_fail_status, 20500, "Internal Server Error")
        record = state.recordings.get(request.path_params["recording"])
        if record is None or record["deleted"]:
            return twilio_error(404, 20404, "The requested resource was not found")
        return Response(record["_wav"], media_type="audio/x-wav")

    async def delete_recording(request: Request) -> Response:
        if (error := refused(request)) is not None:
            return error
        record = state.recordings.get(request.path_params["recording"])
        if record is None or record["deleted"]:
            return twilio_error(404, 20404, "The requested resource was not found")
        record["deleted"] = True
        return Response(status_code=204)

    async def dump_recordings(request: Request) -> JSONResponse:
        return JSONResponse(
            [{k: v for k, v in r.items() if not k.startswith("_")} for r in state.recordings.values()]
        )

    async def dump_updates(request: Request) -> JSONResponse:
        return JSONResponse(state.updates)

    async def configure(request: Request) -> JSONResponse:
        body = await request.json()
        state.fail_next = int(body.get("fail_next", state.fail_next))
        state.fail_status = int(body.get("fail_status", state.fail_status))
        state.media_fail_next = int(body.get("media_fail_next", state.media_fail_next))
        state.media_fail_status = int(body.get("media_fail_status", state.media_fail_status))
        state.ended = set(body.get("ended", state.ended))
        state.wav_seconds = float(body.get("wav_seconds", state.wav_seconds))
        state.deliver_base = body.get("deliver_base", state.deliver_base)
        return JSONResponse({"ok": True})

    async def complete(request: Request) -> JSONResponse:
        sid = request.path_params["recording"]
        record = state.recordings.get(sid)
        if record is None or not record["status_callback"] or not state.deliver_base:
            return JSONResponse({"error": "unknown recording, no callback or no deliver_base"}, 400)
        record["status"] = "completed"
        url = record["status_callback"]
        form = state.callback_form(sid)
        parts = urlsplit(url)
        target = state.deliver_base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(
                target, data=form, headers={"X-Twilio-Signature": state.sign(url, form)}
            )
        return JSONResponse({"status_code": answer.status_code})

    api = API
    return Starlette(
        routes=[
            Route(f"{api}/Calls/{{call}}.json", update_call, methods=["POST"]),
            Route(f"{api}/Calls/{{call}}/Recordings.json", start_recording, methods=["POST"]),
            Route(f"{api}/Recordings/{{recording}}.wav", media, methods=["GET"]),
            Route(f"{api}/Recordings/{{recording}}.json", delete_recording, methods=["DELETE"]),
            Route("/_fake/recordings", dump_recordings, methods=["GET"]),
            Route("/_fake/updates", dump_updates, methods=["GET"]),
            Route("/_fake/config", configure, methods=["POST"]),
            Route("/_fake/recordings/{recording}/complete", complete, methods=["POST"]),
        ]
    )


@asynccontextmanager
async def running(state: FakeVoiceState) -> AsyncIterator[str]:
    """The fake under uvicorn on a free loopback port in this loop; yields its base URL."""
    async with serving(build_app(state)) as base_url:
        yield base_url
