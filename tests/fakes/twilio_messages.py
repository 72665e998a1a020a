"""A local Twilio Programmable Messaging API: ``POST``/``GET /2010-04-01/Accounts/{sid}/Messages.json``.

It checks HTTP Basic auth like Twilio (401, code 20003), answers a create with 201 and Twilio's message
JSON, lists messages with the ``To``, ``From``, ``DateSent>`` filters and ``next_page_uri`` paging, and
returns Twilio's error JSON for refused numbers (400, code 21211). A message is stored *before* the
answer is written, as at Twilio, so a client killed mid-request leaves a message the server has.

Test controls (not part of Twilio's API): ``GET /_fake/messages`` returns everything stored,
``POST /_fake/config`` sets ``delay_ms`` (answer latency), ``fail_next`` (that many creates answer
``fail_status``, default 503) and ``refuse`` (numbers answered 21211).

Run it alone (the benchmark and the process tests do)::

    python -m tests.fakes.twilio_messages --port 8099 --account-sid AC… --auth-token secret
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PAGE_SIZE_MAX = 1000


@dataclass
class FakeState:
    account_sid: str
    auth_token: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    delay_ms: float = 0.0
    fail_next: int = 0
    fail_status: int = 503
    refuse: set[str] = field(default_factory=set)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def authorised(request: Request, state: FakeState) -> bool:
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return False
    return secrets.compare_digest(user, state.account_sid) and secrets.compare_digest(
        password, state.auth_token
    )


def build_app(state: FakeState) -> Starlette:
    def path_ok(request: Request) -> bool:
        return bool(request.path_params["sid"] == state.account_sid)

    async def create(request: Request) -> JSONResponse:
        if not authorised(request, state) or not path_ok(request):
            return twilio_error(401, 20003, "Authenticate")
        form = dict(parse_qsl((await request.body()).decode()))  # what request.form() does, minus multipart
        to, sender, body = (form.get(name, "") for name in ("To", "From", "Body"))
        if not to or not body:
            return twilio_error(400, 21604 if not to else 21602, "A 'To' and 'Body' are required")
        if state.fail_next > 0:
            state.fail_next -= 1
            return twilio_error(state.fail_status, 20500, "Internal Server Error")
        if to in state.refuse:
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        now = datetime.now(UTC)
        record = {
            "sid": f"SM{next(state.counter):032x}",
            "account_sid": state.account_sid,
            "to": to,
            "from": sender,
            "body": body,
            "status": "queued",
            "direction": "outbound-api",
            "date_created": format_datetime(now),
            "date_sent": None,
            "status_callback": form.get("StatusCallback"),
            "num_segments": "1",
            "error_code": None,
            "error_message": None,
            "_created": now,
        }
        state.messages.append(record)
        if state.delay_ms:
            await asyncio.sleep(state.delay_ms / 1000)
        return JSONResponse(public(record), status_code=201)

    async def list_messages(request: Request) -> JSONResponse:
        if not authorised(request, state) or not path_ok(request):
            return twilio_error(401, 20003, "Authenticate")
        query = request.query_params
        found = [m for m in state.messages if matches(m, query)]
        found.sort(key=lambda m: m["_created"], reverse=True)
        size = min(int(query.get("PageSize", "50")), PAGE_SIZE_MAX)
        page = int(query.get("Page", "0"))
        chunk = found[page * size : (page + 1) * size]
        next_uri = None
        if (page + 1) * size < len(found):
            params = "&".join(f"{k}={v}" for k, v in query.items() if k != "Page")
            next_uri = f"{request.url.path}?{params}&Page={page + 1}"
        return JSONResponse(
            {
                "messages": [public(m) for m in chunk],
                "page": page,
                "page_size": size,
                "next_page_uri": next_uri,
            }
        )

    async def dump(request: Request) -> JSONResponse:
        return JSONResponse([public(m) for m in state.messages])

    async def configure(request: Request) -> JSONResponse:
        body = await request.json()
        state.delay_ms = float(body.get("delay_ms", state.delay_ms))
        state.fail_next = int(body.get("fail_next", state.fail_next))
        state.fail_status = int(body.get("fail_status", state.fail_status))
        state.refuse = set(body.get("refuse", state.refuse))
        return JSONResponse({"ok": True})

    path = "/2010-04-01/Accounts/{sid}/Messages.json"
    return Starlette(
        routes=[
            Route(path, create, methods=["POST"]),
            Route(path, list_messages, methods=["GET"]),
            Route("/_fake/messages", dump, methods=["GET"]),
            Route("/_fake/config", configure, methods=["POST"]),
        ]
    )


def matches(message: dict[str, Any], query: Any) -> bool:
    if "To" in query and message["to"] != query["To"]:
        return False
    if "From" in query and message["from"] != query["From"]:
        return False
    since = query.get("DateSent>")
    return not (since and message["_created"].date() < date.fromisoformat(since))


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if not key.startswith("_")}


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--account-sid", default="AC" + "0" * 32)
    parser.add_argument("--auth-token", default="test-auth-token")
    args = parser.parse_args()
    state = FakeState(args.account_sid, args.auth_token)
    uvicorn.run(build_app(state), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
