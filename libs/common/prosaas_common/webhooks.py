"""Outbound webhooks: which URLs an event goes to, the signed request, and the retry schedule.

Every request carries::

    X-ProSaaS-Event: lead.created
    X-ProSaaS-Delivery: 42
    X-ProSaaS-Timestamp: 1795000000
    X-ProSaaS-Signature: t=1795000000,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>

The body is the JSON ``{"id", "event", "created_at", "business_id", "data"}``; ``id`` (the delivery id)
stays the same across retries and re-sends, so a receiver can drop duplicates. :func:`verify` is what a
receiver runs (it is short enough to copy). A delivery is tried up to :data:`MAX_ATTEMPTS` times over
about a day: exponential base delays with full jitter (each times ``uniform(0.5, 1.0)``), so receivers that
come back after an outage are not hit by every sender at the same second.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prosaas_common.backoff import jittered_delay
from prosaas_common.jobs import JobName, Queue

SIGNATURE_HEADER = "X-ProSaaS-Signature"
EVENT_HEADER = "X-ProSaaS-Event"
DELIVERY_HEADER = "X-ProSaaS-Delivery"
TIMESTAMP_HEADER = "X-ProSaaS-Timestamp"
SECRET_PREFIX = "whsec_"
# The worker job that POSTs one delivery: ``webhooks.deliver(delivery_id, since)``, and its queue.
DELIVER_JOB = JobName.WEBHOOKS_DELIVER
DELIVER_QUEUE = Queue.DEFAULT
DEFAULT_TOLERANCE_S = 300

# Events sent to the generic ``webhook_url``; two also have a URL of their own.
EVENTS: tuple[str, ...] = (
    "lead.created",
    "lead.status_changed",
    "appointment.created",
    "appointment.updated",
    "appointment.cancelled",
    "call.completed",
)
SPECIFIC_URL_FIELDS: dict[str, str] = {
    "call.completed": "call_completed_webhook_url",
    "lead.status_changed": "lead_status_webhook_url",
}
GENERIC_URL_FIELD = "webhook_url"

# Base wait after attempt N failed (N = 1 … 10): 30 s, 1 m, 2 m, 5 m, 15 m, 30 m, 1 h, 3 h, 6 h, 12 h.
RETRY_BASE_DELAYS_S: tuple[float, ...] = (30, 60, 120, 300, 900, 1800, 3600, 10800, 21600, 43200)
# The first attempt plus one retry per base delay; the last failure marks the delivery dead.
MAX_ATTEMPTS = len(RETRY_BASE_DELAYS_S) + 1


def delivery_job_id(delivery_id: int, attempts: int) -> str:
    """The arq job id of the delivery round that starts after ``attempts`` attempts: unique per round,
    so a re-send is never dropped as a duplicate of a finished round, and a double click is."""
    return f"webhook:{delivery_id}:{attempts}"


def target_urls(event_type: str, settings: Any) -> list[str]:
    """The URLs ``event_type`` goes to, from a settings row (``webhook_url`` and the event's own URL
    field); blanks dropped, duplicates once. Unknown event types go nowhere."""
    if event_type not in EVENTS:
        return []
    fields = [GENERIC_URL_FIELD]
    if event_type in SPECIFIC_URL_FIELDS:
        fields.append(SPECIFIC_URL_FIELDS[event_type])
    urls: list[str] = []
    for field in fields:
        url = (getattr(settings, field, None) or "").strip()
        if url and url not in urls:
            urls.append(url)
    return urls


def new_secret() -> str:
    """A signing secret in the format the settings API rotates to."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def retry_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after attempt ``attempt`` (1-based) failed: base delay times uniform(0.5, 1.0)."""
    return jittered_delay(RETRY_BASE_DELAYS_S, attempt, rng)


def request_body(
    delivery_id: int, event_type: str, created_at: datetime, business_id: int, data: Mapping[str, Any]
) -> bytes:
    """The JSON body POSTed for a delivery (compact, UTF-8)."""
    document = {
        "id": delivery_id,
        "event": event_type,
        "created_at": created_at.isoformat(),
        "business_id": business_id,
        "data": data,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` with ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def signed_headers(
    secret: str, body: bytes, event_type: str, delivery_id: int, *, now: float | None = None
) -> dict[str, str]:
    """Every header of a delivery request, signed at ``now`` (default: the current time)."""
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: event_type,
        DELIVERY_HEADER: str(delivery_id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(secret, body, timestamp),
    }


def verify(
    secret: str,
    header: str,
    body: bytes,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    *,
    now: float | None = None,
) -> bool:
    """True when ``header`` (``t=…,v1=…``) signs ``body`` (the raw bytes received) with ``secret`` and
    its timestamp is within ``tolerance_s`` of now (a replayed old request fails)."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", []))
