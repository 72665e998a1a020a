"""Checking that a webhook really comes from Twilio: ``X-Twilio-Signature`` over the public URL.

Twilio signs the exact URL it was given (``https://{PUBLIC_HOST}{path}?{query}``) plus the POSTed form
parameters with the account's auth token. We validate with the ``twilio`` package against that public
URL — never the Host header a client sent — and a missing token refuses everything.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from twilio.request_validator import RequestValidator

from prosaas_common.settings import CommonSettings

SIGNATURE_HEADER = "X-Twilio-Signature"


def public_url(request: Request, settings: CommonSettings) -> str:
    query = request.url.query
    return f"https://{settings.public_host}{request.url.path}" + (f"?{query}" if query else "")


async def signed_form(request: Request, settings: CommonSettings) -> dict[str, str]:
    """The form parameters of a request Twilio signed; 403 (and nothing read further) otherwise."""
    form = await request.form()
    params = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if (
        not token
        or not signature
        or not RequestValidator(token).validate(public_url(request, settings), params, signature)
    ):
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    return params
