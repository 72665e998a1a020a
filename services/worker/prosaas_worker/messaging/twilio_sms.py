"""SMS through Twilio's Programmable Messaging REST API (``/2010-04-01/Accounts/{sid}/Messages.json``).

httpx with one pooled client per dispatcher run; the base URL comes from ``TWILIO_API_BASE_URL`` so tests
and the benchmark talk to a local server speaking the same protocol. Twilio has no idempotency key for
messages, so :meth:`TwilioSms.find_sent` looks a message up by To/From/date and body instead.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from prosaas_common.twilio_api import API_VERSION, error_details
from prosaas_worker.messaging.channel import Sender, SendError, SendResult

# Twilio error codes that blame the message or the number, not the moment: never retried as is.
# Anything else in 4xx is a permanent refusal too, except rate limiting (429) and auth (our config).
RETRYABLE_STATUS = frozenset({401, 403, 408, 409, 425, 429})
# How far back find_sent accepts a provider record (clock skew between us and the provider).
CLOCK_SKEW = timedelta(minutes=2)
MAX_LOOKUP_PAGES = 5
CONNECTIONS_PER_POOL = 2


class TwilioSms:
    name = "sms"

    def __init__(
        self,
        *,
        base_url: str,
        account_sid: str,
        auth_token: str,
        status_callback: str | None,
        concurrency: int,
        timeout: float,
    ) -> None:
        self._account_sid = account_sid
        self._status_callback = status_callback
        # Several small connection pools instead of one large one: httpcore's pool bookkeeping grows with
        # connections x waiting requests, and at 50 connections in one pool it cost more CPU than the
        # requests themselves (bench/dispatch.py: 165 msg/s with one pool, see docs/benchmarks.md).
        pools = max(1, math.ceil(concurrency / CONNECTIONS_PER_POOL))
        per_pool = min(concurrency, CONNECTIONS_PER_POOL)
        self._clients = [
            httpx.AsyncClient(
                base_url=base_url,
                auth=(account_sid, auth_token),
                timeout=timeout,
                limits=httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool),
                headers={"Accept": "application/json"},
            )
            for _ in range(pools)
        ]
        self._next_client = itertools.cycle(self._clients)

    @property
    def _messages_path(self) -> str:
        return f"/{API_VERSION}/Accounts/{self._account_sid}/Messages.json"

    async def send(self, sender: Sender, to: str, text: str, dedup_key: str) -> SendResult:
        form = {"To": to, "From": sender.from_number, "Body": text}
        if self._status_callback:
            form["StatusCallback"] = f"{self._status_callback}?message_id={sender.message_id}"
        response = await next(self._next_client).post(self._messages_path, data=form)
        if response.status_code in (200, 201):
            body = response.json()
            return SendResult(str(body["sid"]), str(body.get("status") or "queued"))
        raise refusal(response)

    async def find_sent(self, sender: Sender, to: str, text: str, since: datetime) -> SendResult | None:
        earliest = since - CLOCK_SKEW
        params: dict[str, Any] | None = {
            "To": to,
            "From": sender.from_number,
            "DateSent>": earliest.astimezone(UTC).date().isoformat(),
            "PageSize": 100,
        }
        url = self._messages_path
        for _ in range(MAX_LOOKUP_PAGES):
            response = await self._clients[0].get(url, params=params)
            if response.status_code != 200:
                raise refusal(response)
            page = response.json()
            for record in page.get("messages", []):
                if record.get("body") == text and created_at(record) >= earliest:
                    return SendResult(str(record["sid"]), str(record.get("status") or "queued"))
            next_page = page.get("next_page_uri")
            if not next_page:
                return None
            url, params = str(next_page), None
        return None

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


def created_at(record: dict[str, Any]) -> datetime:
    raw = record.get("date_created") or record.get("date_sent")
    try:
        return parsedate_to_datetime(str(raw))
    except (TypeError, ValueError):
        return datetime.max.replace(tzinfo=UTC)  # unknown time: treat as recent (never re-send blindly)


def refusal(response: httpx.Response) -> SendError:
    """The error of a non-2xx answer: Twilio's JSON ``{code, message}`` when it has one."""
    code, message = error_details(response.status_code, response.reason_phrase, response.content)
    permanent = 400 <= response.status_code < 500 and response.status_code not in RETRYABLE_STATUS
    detail = f"HTTP {response.status_code}" + (f" code {code}" if code is not None else "") + f": {message}"
    return SendError(detail[:500], permanent=permanent, code=code)
