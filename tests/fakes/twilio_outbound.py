"""A local Twilio Voice API for outbound calls: ``POST``/``GET /2010-04-01/Accounts/{sid}/Calls.json``.

It checks HTTP Basic auth like Twilio (401, code 20003), requires ``To`` (21201), ``From`` (21213) and an
absolute ``Url`` (21205), answers a create with 201 and Twilio's call JSON (``CA…`` sid, ``queued``), and
lists calls with the ``To``, ``From``, ``StartTime>`` filters. A call is stored *before* the answer is
written, as at Twilio, so a client that loses the answer leaves a call the server has.

Test controls (not Twilio's API): ``GET /_fake/calls`` (every call stored, with its ``url``,
``status_callback`` and ``status_callback_event``), ``POST /_fake/config`` (``fail_next`` creates answer
``fail_status``, default 503; ``refuse``: numbers answered 400/21211; ``drop_answer_next``: that many
creates store the call and then answer 503, like a lost answer), and for end-to-end tests
``POST /_fake/calls/{sid}/answer`` and ``POST /_fake/calls/{sid}/status`` with ``{"target": base URL}``:
the signed ``Url`` webhook / a signed status callback posted to ``target`` instead of the public host
(the signature covers the public URL, as Twilio's does). Both answer what the webhook answered.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from tests.fakes.twilio_messages import FakeState as _MessagesState
from tests.fakes.twilio_messages import authorised, twilio_error


@dataclass
class FakeCalls:
    account_sid: str
    auth_token: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    fail_status: int = 503
    drop_answer_next: int = 0
    refuse: set[str] = field(default_factory=set)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def by_sid(self, sid: str) -> dict[str, Any] | None:
        return next((c for c in self.calls if c["sid"] == sid), None)

    def signed(self, url: str, params: dict[str, str]) -> dict[str, str]:
        return {"X-Twilio-Signature": RequestValidator(self.auth_token).compute_signature(url, params)}


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if not key.startswith("_")}


def build_app(state: FakeCalls) -> Starlette:
    auth_state = _MessagesState(state.account_sid, state.auth_token)

    def allowed(request: Request) -> bool:
        return authorised(request, auth_state) and request.path_params["sid"] == state.account_sid

    async def create(request: Request) -> JSONResponse:
        if not allowed(request):
            return twilio_error(401, 20003, "Authenticate")
        pairs = parse_qsl((await request.body()).decode())
        form = dict(pairs)
        to, sender, url = form.get("To", ""), form.get("From", ""), form.get("Url", "")
        if not to:
            return twilio_error(400, 21201, "No 'To' number is specified")
        if not sender:
            return twilio_error(400, 21213, "No 'From' number is specified")
        if not url.startswith(("https://", "http://")):
            return twilio_error(400, 21205, "Url is not a valid URL")
        if state.fail_next > 0:
            state.fail_next -= 1
            return twilio_error(state.fail_status, 20500, "Internal Server Error")
        if to in state.refuse:
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        now = datetime.now(UTC)
        record = {
            "sid": f"CA{next(state.counter):032x}",
            "account_sid": state.account_sid,
            "to": to,
            "from": sender,
            "status": "queued",
            "direction": "outbound-api",
            "date_created": format_datetime(now),
            "start_time": None,
            "url": url,
            "status_callback": form.get("StatusCallback"),
            "status_callback_event": [v for k, v in pairs if k == "StatusCallbackEvent"],
            "_created": now,
        }
        state.calls.append(record)
        if state.drop_answer_next > 0:
            state.drop_answer_next -= 1
            return twilio_error(503, 20500, "Service Unavailable")
        return JSONResponse(public(record), status_code=201)

    async def list_calls(request: Request) -> JSONResponse:
        if not allowed(request):
            return twilio_error(401, 20003, "Authenticate")
        query = request.query_params
        found = [c for c in state.calls if matches(c, query)]
        found.sort(key=lambda c: c["_created"], reverse=True)
        return JSONResponse({"calls": [public(c) for c in found], "next_page_uri": None})

    async def dump(request: Request) -> JSONResponse:
        return JSONResponse([public(c) for c in state.calls])

    async def configure(request: Request) -> JSONResponse:
        body = await request.json()
        state.fail_next = int(body.get("fail_next", state.fail_next))
        state.fail_status = int(body.get("fail_status", state.fail_status))
        state.drop_answer_next = int(body.get("drop_answer_next", state.drop_answer_next))
        state.refuse = set(body.get("refuse", state.refuse))
        return JSONResponse({"ok": True})

    async def webhook(request: Request, url_key: str, params: dict[str, str]) -> JSONResponse:
        record = state.by_sid(request.path_params["call"])
        if record is None or not record.get(url_key):
            return JSONResponse({"error": "no such call or URL"}, status_code=404)
        body = await request.json()
        public_url = str(record[url_key])
        parts = urlsplit(public_url)
        local = str(body["target"]).rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        form = {
            "CallSid": record["sid"],
            "AccountSid": state.account_sid,
            "To": record["to"],
            "From": record["from"],
            "Direction": "outbound-api",
        } | params
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(local, data=form, headers=state.signed(public_url, form))
        return JSONResponse({"status_code": answer.status_code, "body": answer.text})

    async def answer(request: Request) -> JSONResponse:
        record = state.by_sid(request.path_params["call"])
        if record is not None:
            record["status"] = "in-progress"
        return await webhook(request, "url", {"CallStatus": "in-progress"})

    async def status(request: Request) -> JSONResponse:
        body = await request.json()
        record = state.by_sid(request.path_params["call"])
        if record is not None:
            record["status"] = str(body["status"])
        params = {"CallStatus": str(body["status"])}
        if body.get("duration") is not None:
            params["CallDuration"] = str(body["duration"])
        return await webhook(request, "status_callback", params)

    path = "/2010-04-01/Accounts/{sid}/Calls.json"
    return Starlette(
        routes=[
            Route(path, create, methods=["POST"]),
            Route(path, list_calls, methods=["GET"]),
            Route("/_fake/calls", dump, methods=["GET"]),
            Route("/_fake/config", configure, methods=["POST"]),
            Route("/_fake/calls/{call}/answer", answer, methods=["POST"]),
            Route("/_fake/calls/{call}/status", status, methods=["POST"]),
        ]
    )


def matches(record: dict[str, Any], query: Any) -> bool:
    if "To" in query and record["to"] != query["To"]:
        return False
    if "From" in query and record["from"] != query["From"]:
        return False
    since = query.get("StartTime>")
    return not (since and record["_created"].date() < date.fromisoformat(since))
