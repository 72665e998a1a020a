"""A local OpenAI Chat Completions API: ``POST /v1/chat/completions`` (what call summaries talk to in tests).

Like the real API it needs ``Authorization: Bearer <api_key>`` (else 401 with OpenAI's error JSON, code
``invalid_api_key``), checks the body (a ``model`` string and a non-empty ``messages`` list of
``{role, content}``, else 400 ``invalid_request_error``) and answers a ``chat.completion`` object: one
choice whose ``message.content`` is :attr:`FakeChat.reply`, ``finish_reason`` ``stop`` and ``usage``.

Test controls (not part of the API): :attr:`FakeChat.received` (every request body, also refused ones
after auth), ``fail_status`` (answer that status with OpenAI's error JSON), ``malformed`` (answer 200 with
a body that is not a completion), ``hang`` (hold the answer until :meth:`FakeChat.release` or
``hang_s``, for client timeouts).

Run it alone::

    python -m tests.fakes.openai_chat --port 8097 --api-key test-key
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    429: "requests",
    500: "server_error",
}


@dataclass
class FakeChat:
    api_key: str
    reply: str | None = "Ada called about a toothache and booked a check-up for tomorrow at 09:00."
    fail_status: int | None = None
    malformed: bool = False
    hang: bool = False
    hang_s: float = 30.0
    received: list[dict[str, Any]] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        """Let held (``hang``) answers go, e.g. before the server stops."""
        self.released.set()


def openai_error(status: int, message: str, code: str | None, param: str | None = None) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "message": message,
                "type": ERROR_TYPES.get(status, "api_error"),
                "param": param,
                "code": code,
            }
        },
        status_code=status,
    )


def bearer_ok(request: Request, state: FakeChat) -> bool:
    header = request.headers.get("authorization", "")
    return header.startswith("Bearer ") and secrets.compare_digest(header[7:], state.api_key)


def body_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages"
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "developer",
            "user",
            "assistant",
        ):
            return "messages"
        if not isinstance(message.get("content"), str):
            return "messages"
    if "max_tokens" in body and "max_completion_tokens" in body:
        return "max_tokens"
    return None


def completion(state: FakeChat, model: str, body: dict[str, Any]) -> dict[str, Any]:
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
    completion_tokens = len((state.reply or "").split())
    return {
        "id": f"chatcmpl-fake{next(state.counter):012d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": state.reply, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def build_app(state: FakeChat) -> Starlette:
    async def chat_completions(request: Request) -> Response:
        if not bearer_ok(request, state):
            return openai_error(401, "Incorrect API key provided: sk-****.", "invalid_api_key")
        try:
            body = await request.json()
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.", None)
        state.received.append(body)
        problem = body_problem(body)
        if problem is not None:
            return openai_error(400, f"Invalid value for '{problem}'.", "invalid_value", problem)
        if state.hang:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.released.wait(), state.hang_s)
        if state.fail_status is not None:
            return openai_error(state.fail_status, "The server had an error processing your request.", None)
        if state.malformed:
            return PlainTextResponse("<html>upstream proxy error</html>", status_code=200)
        return JSONResponse(completion(state, body["model"], body))

    return Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", default="test-key")
    args = parser.parse_args()
    uvicorn.run(build_app(FakeChat(args.api_key)), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
