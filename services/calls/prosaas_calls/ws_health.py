"""``/ws/health``: a WebSocket liveness check for the path Twilio media streams take.

Proxies that mishandle the Upgrade handshake break media streams silently, so devops check the path
end to end: connect, read the greeting, send ``ping``, read ``pong``. Anything else sent is answered
with an error message and otherwise ignored; the socket closes after ``IDLE_TIMEOUT_S`` of silence.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from prosaas_common import __version__
from prosaas_common.logging import get_logger

IDLE_TIMEOUT_S = 30.0
MAX_MESSAGE_CHARS = 1024

router = APIRouter()
log = get_logger("prosaas.calls.ws")


@router.websocket("/ws/health")
async def websocket_health(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"status": "ok", "service": "calls", "version": __version__})
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT_S):
                    message = await websocket.receive_text()
            except TimeoutError:
                await websocket.close(code=1000, reason="idle")
                return
            except (KeyError, RuntimeError):
                # A binary frame where text was expected: counted as ignored, never fatal.
                log.debug("ws_health.unexpected_frame")
                await websocket.send_json({"type": "error", "error": "send text frames"})
                continue
            if message.strip().lower() == "ping":
                await websocket.send_json({"type": "pong"})
            else:
                await websocket.send_json({"type": "error", "error": "send 'ping'"[:MAX_MESSAGE_CHARS]})
