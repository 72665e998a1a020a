"""``POST /webhook/outbound_call``: Twilio asks what to do once the lead answered a call we placed.

The worker placed the call with ``Url=https://{PUBLIC_HOST}/webhook/outbound_call?call_id={row id}``, so
the row is found by that id (the signature covers the URL with its query, so it cannot be swapped) even
when Twilio is faster than the worker's commit of the call sid; the sid is then written here. Like an
incoming call, the answered call takes a capacity slot (the deployment's and the business's limits; over
capacity the lead hears a polite message and the call ends) and gets TwiML connecting it to our media
stream with its parameters (``direction=outbound``, the lead) and a one-time stream token.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from prosaas_calls import stream_tokens
from prosaas_calls.capacity import Refused
from prosaas_calls.media.stream import call_capacity
from prosaas_calls.twilio_auth import signed_form
from prosaas_calls.voice import business_call_limit, say_and_hang_up, stream_twiml
from prosaas_common.logging import get_logger
from prosaas_common.models import Call, CallDirection
from prosaas_common.outbound_calls import OUTBOUND_CALL_PATH, is_placeholder
from prosaas_common.web import DbSession, resources_of

router = APIRouter(tags=["twilio"])
log = get_logger("prosaas.calls.outbound")

UNKNOWN_CALL_TEXT = "Sorry, this call cannot be connected. Goodbye."
OUTBOUND_BUSY_TEXT = (
    "Hello, this is a call from our office, but all our lines are busy right now. "
    "We will call you back soon. Goodbye."
)
MAX_ROW_ID = 2**63 - 1


def call_id_of(request: Request) -> int | None:
    raw = request.query_params.get("call_id", "")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= MAX_ROW_ID else None


async def outbound_row(db: DbSession, call_id: int | None, call_sid: str) -> Call | None:
    if call_id is not None:
        return await db.scalar(select(Call).where(Call.id == call_id).with_for_update())
    return await db.scalar(select(Call).where(Call.call_sid == call_sid).with_for_update())


@router.post(OUTBOUND_CALL_PATH, operation_id="twilio_outbound_call", include_in_schema=False)
async def outbound_call(request: Request, db: DbSession) -> Response:
    resources = resources_of(request)
    params = await signed_form(request, resources.settings)
    call_sid = params.get("CallSid", "")
    call = await outbound_row(db, call_id_of(request), call_sid) if call_sid else None
    if call is None or call.direction != CallDirection.OUTBOUND.value:
        log.info("call.outbound_unknown", call_sid=call_sid, call_id=request.query_params.get("call_id"))
        return say_and_hang_up(UNKNOWN_CALL_TEXT)
    if is_placeholder(call.call_sid):
        call.call_sid = call_sid[:64]  # Twilio came before the worker recorded the sid
    elif call.call_sid != call_sid:
        log.warning("call.outbound_sid_mismatch", call_id=call.id, call_sid=call_sid, expected=call.call_sid)
        return say_and_hang_up(UNKNOWN_CALL_TEXT)
    slot = await call_capacity(request.app).acquire(
        call_sid, call.business_id, await business_call_limit(db, call.business_id)
    )
    if isinstance(slot, Refused):
        call.end_reason = f"over_capacity:{slot.reason}"
        log.info("call.over_capacity", call_sid=call_sid, business_id=call.business_id, limit=slot.reason)
        return say_and_hang_up(OUTBOUND_BUSY_TEXT)
    token = await stream_tokens.issue(resources.redis, call_sid)
    log.debug(
        "call.outbound_connected", call_sid=call_sid, business_id=call.business_id, lead_id=call.lead_id
    )
    return stream_twiml(
        resources.settings.public_host,
        {
            "call_sid": call_sid,
            "business_id": str(call.business_id),
            "direction": CallDirection.OUTBOUND.value,
            "lead_id": str(call.lead_id or ""),
            "stream_token": token,
        },
    )
