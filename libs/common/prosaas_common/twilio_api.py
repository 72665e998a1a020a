"""What every Twilio REST client of the services shares: the API version in the paths and how a refusal
is read (Twilio answers errors as JSON ``{code, message, more_info, status}``)."""

from __future__ import annotations

import json

API_VERSION = "2010-04-01"


def error_details(status_code: int, reason: str, content: bytes) -> tuple[int | None, str]:
    """Twilio's error code (None when the body has none) and message (else the HTTP reason phrase)."""
    try:
        body = json.loads(content)
        code = int(body["code"]) if body.get("code") is not None else None
        message = str(body.get("message") or reason or "error")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, reason or f"HTTP {status_code}"
    return code, message
