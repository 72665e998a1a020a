"""Outbound calls through Twilio's Voice REST API (``/2010-04-01/Accounts/{sid}/Calls.json``).

httpx, base URL from ``TWILIO_API_BASE_URL`` (tests use a local server speaking the same protocol). Twilio
fetches ``Url`` (our ``/webhook/outbound_call?call_id=…``) when the callee answers and posts the call's
progress to ``StatusCallback`` (our ``/webhook/call_status``). Twilio has no idempotency key for calls,
so :meth:`TwilioCalls.find_placed` looks calls up by To/From/start date when an earlier attempt's answer
was lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from prosaas_common.outbound_calls import CALL_STATUS_PATH, OUTBOUND_CALL_PATH
from prosaas_common.twilio_api import API_VERSION
from prosaas_worker.messaging.twilio_sms import created_at, refusal

STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
CLOCK_SKEW = timedelta(minutes=2)
MAX_LOOKUP_PAGES = 5


@dataclass(frozen=True)
class Placed:
    sid: str
    status: str


class DialError(Exception):
    """Twilio refused or could not be reached; ``permanent`` when trying again cannot help."""

    def __init__(self, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.permanent = permanent


class TwilioCalls:
    def __init__(
        self, *, base_url: str, account_sid: str, auth_token: str, public_host: str, timeout: float
    ) -> None:
        self._account_sid = account_sid
        self._public_host = public_host
        self._client = httpx.AsyncClient(
            base_url=base_url,
            auth=(account_sid, auth_token),
            timeout=timeout,
            headers={"Accept": "application/json"},
        )

    @property
    def _calls_path(self) -> str:
        return f"/{API_VERSION}/Accounts/{self._account_sid}/Calls.json"

    def webhook_url(self, call_id: int) -> str:
        return f"https://{self._public_host}{OUTBOUND_CALL_PATH}?call_id={call_id}"

    async def create(self, call_id: int, to: str, from_number: str) -> Placed:
        form: dict[str, Any] = {
            "To": to,
            "From": from_number,
            "Url": self.webhook_url(call_id),
            "Method": "POST",
            "StatusCallback": f"https://{self._public_host}{CALL_STATUS_PATH}",
            "StatusCallbackMethod": "POST",
            "StatusCallbackEvent": list(STATUS_EVENTS),
        }
        try:
            response = await self._client.post(self._calls_path, data=form)
        except httpx.TransportError as exc:
            raise DialError(f"{type(exc).__name__}: {exc}"[:500], permanent=False) from exc
        if response.status_code in (200, 201):
            body = response.json()
            return Placed(str(body["sid"]), str(body.get("status") or "queued"))
        error = refusal(response)
        raise DialError(str(error), permanent=error.permanent)

    async def find_placed(self, to: str, from_number: str, since: datetime) -> list[Placed]:
        """Calls To/From created since ``since`` (minus clock skew), newest first."""
        earliest = since - CLOCK_SKEW
        params: dict[str, Any] | None = {
            "To": to,
            "From": from_number,
            "StartTime>": earliest.astimezone(UTC).date().isoformat(),
            "PageSize": 100,
        }
        url, found = self._calls_path, list[Placed]()
        for _ in range(MAX_LOOKUP_PAGES):
            try:
                response = await self._client.get(url, params=params)
            except httpx.TransportError as exc:
                raise DialError(f"{type(exc).__name__}: {exc}"[:500], permanent=False) from exc
            if response.status_code != 200:
                raise DialError(str(refusal(response)), permanent=False)
            page = response.json()
            found.extend(
                Placed(str(record["sid"]), str(record.get("status") or "queued"))
                for record in page.get("calls", [])
                if created_at(record) >= earliest
            )
            next_page = page.get("next_page_uri")
            if not next_page:
                break
            url, params = str(next_page), None
        return found

    async def aclose(self) -> None:
        await self._client.aclose()
