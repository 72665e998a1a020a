"""Twilio's Voice REST API for a live call: start its recording, replace its TwiML (a transfer).

One :class:`TwilioVoice` per calls process (``app.state.twilio_voice``, opened in the app's lifespan by
:func:`prosaas_calls.recording.twilio_voice_lifespan`), an httpx client with Basic auth (account sid +
auth token) on ``TWILIO_API_BASE_URL``, so tests talk to a local server speaking the same protocol. A
refusal or an unreachable API raises :class:`TwilioError` with Twilio's status, code and message —
never the token.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from prosaas_common.settings import CommonSettings
from prosaas_common.twilio_api import API_VERSION, error_details

DEFAULT_TIMEOUT_S = 10.0
_CALL_SID = re.compile(r"^CA[0-9A-Za-z]{32}$")


class TwilioError(Exception):
    """Twilio refused a request (``status`` is its HTTP status, ``code`` its error code when it sent
    one) or could not be reached (``status`` None)."""

    def __init__(self, status: int | None, code: int | None, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message[:300]
        where = f"HTTP {status}" if status is not None else "unreachable"
        super().__init__(
            f"Twilio {where}" + (f" code {code}" if code is not None else "") + f": {self.message}"
        )


def check_call_sid(call_sid: str) -> str:
    """Only a real-looking call sid goes into a URL path (never a path of the caller's choosing)."""
    if not _CALL_SID.match(call_sid):
        raise ValueError(f"not a Twilio call sid: {call_sid[:40]!r}")
    return call_sid


def refusal(response: httpx.Response) -> TwilioError:
    """The error of a non-2xx answer: Twilio's JSON ``{code, message}`` when it has one."""
    code, message = error_details(response.status_code, response.reason_phrase, response.content)
    return TwilioError(response.status_code, code, message)


class TwilioVoice:
    """The calls service's client of Twilio's Calls and Recordings resources."""

    def __init__(
        self,
        *,
        base_url: str,
        account_sid: str,
        auth_token: str,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.account_sid = account_sid
        self._client = httpx.AsyncClient(
            base_url=base_url,
            auth=(account_sid, auth_token),
            timeout=timeout,
            headers={"Accept": "application/json"},
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> TwilioVoice | None:
        """A client for the platform account; None when Twilio is not configured."""
        if not settings.twilio_account_sid or settings.twilio_auth_token is None:
            return None
        return cls(
            base_url=settings.twilio_api_base_url,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
        )

    def _call_path(self, call_sid: str) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{check_call_sid(call_sid)}"

    async def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._client.post(path, data=form)
        except httpx.HTTPError as exc:
            raise TwilioError(None, None, f"{type(exc).__name__}: {exc}") from None
        if not response.is_success:
            raise refusal(response)
        try:
            body = response.json()
        except ValueError:
            raise TwilioError(response.status_code, None, "answer is not JSON") from None
        return body if isinstance(body, dict) else {}

    async def start_recording(self, call_sid: str, status_callback_url: str) -> str:
        """Record both legs of the live call (one channel each); Twilio posts the recording's status
        (``completed``, or ``absent`` when there was no audio) to ``status_callback_url``. Returns the
        recording's sid."""
        body = await self._post(
            f"{self._call_path(call_sid)}/Recordings.json",
            {
                "RecordingStatusCallback": status_callback_url,
                "RecordingStatusCallbackMethod": "POST",
                "RecordingStatusCallbackEvent": "completed absent",
                "RecordingChannels": "dual",
            },
        )
        return str(body.get("sid") or "")

    async def update_call(self, call_sid: str, twiml: str) -> dict[str, Any]:
        """Replace what the live call is doing with ``twiml`` (e.g. ``<Dial>`` to transfer it); returns
        Twilio's call resource."""
        return await self._post(f"{self._call_path(call_sid)}.json", {"Twiml": twiml})

    async def aclose(self) -> None:
        await self._client.aclose()
