"""Bad input never becomes a 500.

* :class:`RejectNulCharacters` refuses NUL characters before they reach Postgres (which cannot store
  them in text): a JSON or form body, query string or path carrying one answers 422 like any other
  validation error.
* :func:`data_exception_as_422` is the backstop for values the schemas let through but Postgres refuses
  as data (SQLSTATE class 22: out of range, malformed): 422, logged at DEBUG, never a 500.

File uploads (multipart) pass untouched: binary files contain NUL bytes legitimately. Inbound lead
webhooks clean their own input (a site form is not refused for a stray NUL).
"""

from __future__ import annotations

import json
import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prosaas_common.logging import get_logger

log = get_logger("prosaas.api.input")

# A \u0000 escape not itself escaped (an even number of backslashes before it).
JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# Intake webhooks strip NULs themselves: site forms are not refused for them.
EXEMPT_PREFIXES = ("/api/webhook/",)
CHECKED_TYPES = (b"application/json", b"application/x-www-form-urlencoded")


def _refusal(location: str) -> bytes:
    error = {"loc": [location], "msg": "NUL characters are not accepted", "type": "value_error"}
    return json.dumps({"detail": [error]}).encode()


class RejectNulCharacters:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b"") or b"%00" in scope.get("raw_path", b""):
            await self._refuse(send, "query")
            return
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
        if not content_type.startswith(CHECKED_TYPES):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        urlencoded = content_type.startswith(b"application/x-www-form-urlencoded")
        if b"\x00" in body or (b"%00" in body if urlencoded else JSON_NUL.search(body)):
            await self._refuse(send, "body")
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, location: str) -> None:
        body = _refusal(location)
        await send(
            {
                "type": "http.response.start",
                "status": 422,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def data_exception_as_422(request: Request, exc: Exception) -> JSONResponse:
    code = str(getattr(getattr(exc, "orig", None), "sqlstate", "") or "")
    if not code.startswith("22"):
        raise exc
    log.debug("input.refused_by_database", sqlstate=code, path=request.url.path)
    error = {"loc": ["body"], "msg": "a value is out of range or malformed", "type": "value_error"}
    return JSONResponse({"detail": [error]}, status_code=422)


def install_input_guards(app: FastAPI) -> None:
    app.add_middleware(RejectNulCharacters)
    app.add_exception_handler(DBAPIError, data_exception_as_422)
