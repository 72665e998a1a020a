"""Twilio voice webhooks: ``POST /webhook/incoming_call``, ``/webhook/call_status`` and
``/webhook/stream_status``.

Every request must carry a valid ``X-Twilio-Signature`` (403 and no side effect otherwise). The business
is found by the number that was called (``To``); a number no active business owns gets a short spoken
apology and a hangup — never another business's agent. A known one takes a capacity slot
(:mod:`prosaas_calls.capacity`: the deployment's and the business's limits; over capacity the caller
hears a busy message), gets a ``calls`` row (one per call sid: Twilio's retries find the same row and
keep their slot) and TwiML that connects the call to our media stream with the call's parameters and a
one-time stream token. A terminal ``call_status`` releases the slot (idempotently).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from twilio.twiml.voice_response import Connect, VoiceResponse

from prosaas_calls import stream_tokens
from prosaas_calls.capacity import Refused
from prosaas_calls.media.stream import call_capacity
from prosaas_calls.twilio_auth import signed_form
from prosaas_common.jobs import JobName, Queue, enqueue_after_commit
from prosaas_common.logging import get_logger
from prosaas_common.models import (
    TERMINAL_CALL_STATUSES,
    Business,
    BusinessPhoneNumber,
    BusinessSettings,
    Call,
    CallDirection,
    CallStatus,
    Lead,
)
from prosaas_common.outbound_slots import OutboundSlots
from prosaas_common.web import DbSession, resources_of

router = APIRouter(tags=["twilio"])
log = get_logger("prosaas.calls.voice")

STREAM_PATH = "/ws/twilio-media"
DEFAULT_BUSINESS_CALL_LIMIT = 5  # business_settings.max_concurrent_calls when the row is missing
UNKNOWN_NUMBER_TEXT = "Sorry, this number is not available right now. Goodbye."
BUSY_TEXT = "Sorry, all our lines are busy right now. Please call again in a few minutes. Goodbye."
# Status order: a late "ringing" never undoes "in-progress", nothing undoes a terminal status.
STATUS_RANK = {CallStatus.QUEUED: 0, CallStatus.RINGING: 1, CallStatus.IN_PROGRESS: 2}


def twiml(response: VoiceResponse) -> Response:
    return Response(content=str(response), media_type="application/xml")


def say_and_hang_up(text: str) -> Response:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return twiml(response)


async def business_call_limit(db: AsyncSession, business_id: int) -> int:
    limit = await db.scalar(
        select(BusinessSettings.max_concurrent_calls).where(BusinessSettings.business_id == business_id)
    )
    return int(limit) if limit is not None else DEFAULT_BUSINESS_CALL_LIMIT


async def business_for_number(db: AsyncSession, number: str) -> Business | None:
    """The active business that owns ``number`` (E.164, as Twilio sends ``To``)."""
    return await db.scalar(
        select(Business)
        .join(BusinessPhoneNumber, BusinessPhoneNumber.business_id == Business.id)
        .where(BusinessPhoneNumber.e164 == number.strip(), Business.is_active.is_(True))
    )


async def lead_for_caller(db: AsyncSession, business_id: int, caller: str) -> int | None:
    return await db.scalar(
        select(Lead.id).where(Lead.business_id == business_id, Lead.phone == caller.strip())
    )


def stream_twiml(public_host: str, parameters: dict[str, str]) -> Response:
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=f"wss://{public_host}{STREAM_PATH}")
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return twiml(response)


@router.post("/webhook/incoming_call", operation_id="twilio_incoming_call", include_in_schema=False)
async def incoming_call(request: Request, db: DbSession) -> Response:
    resources = resources_of(request)
    params = await signed_form(request, resources.settings)
    call_sid, to, caller = params.get("CallSid", ""), params.get("To", ""), params.get("From", "")
    business = await business_for_number(db, to) if call_sid and to else None
    if business is None:
        log.info("call.unknown_number", call_sid=call_sid, to=to)
        return say_and_hang_up(UNKNOWN_NUMBER_TEXT)
    lead_id = await lead_for_caller(db, business.id, caller)
    # The slot is taken here, atomically for the deployment and the business; over capacity the caller
    # hears a polite busy message and the call is recorded as refused.
    slot = await call_capacity(request.app).acquire(
        call_sid, business.id, await business_call_limit(db, business.id)
    )
    await db.execute(
        insert(Call)
        .values(
            business_id=business.id,
            call_sid=call_sid,
            direction=CallDirection.INBOUND.value,
            from_number=caller[:32] or "anonymous",
            to_number=to[:32],
            lead_id=lead_id,
            status=CallStatus.RINGING.value,
            end_reason=f"over_capacity:{slot.reason}" if isinstance(slot, Refused) else None,
        )
        .on_conflict_do_nothing(index_elements=[Call.call_sid])
    )
    if isinstance(slot, Refused):
        log.info("call.over_capacity", call_sid=call_sid, business_id=business.id, limit=slot.reason)
        return say_and_hang_up(BUSY_TEXT)
    token = await stream_tokens.issue(resources.redis, call_sid)
    log.debug("call.routed", call_sid=call_sid, business_id=business.id, lead_id=lead_id)
    return stream_twiml(
        resources.settings.public_host,
        {
            "call_sid": call_sid,
            "business_id": str(business.id),
            "direction": CallDirection.INBOUND.value,
            "lead_id": str(lead_id or ""),
            "stream_token": token,
        },
    )


@router.post(
    "/webhook/call_status", status_code=204, operation_id="twilio_call_status", include_in_schema=False
)
async def call_status(request: Request, db: DbSession) -> Response:
    params = await signed_form(request, resources_of(request).settings)
    raw_status = params.get("CallStatus", "").lower()
    call = await db.scalar(select(Call).where(Call.call_sid == params.get("CallSid", "")).with_for_update())
    if call is None or raw_status not in CallStatus.__members__.values():
        log.debug("call_status.ignored", call_sid=params.get("CallSid"), status=raw_status)
        return Response(status_code=204)
    status, current = CallStatus(raw_status), CallStatus(call.status)
    if current in TERMINAL_CALL_STATUSES:
        return Response(status_code=204)
    if status in TERMINAL_CALL_STATUSES:
        call.status = status.value
        call.ended_at = func.now()
        duration = params.get("CallDuration", "")
        call.duration_s = int(duration) if duration.isdigit() else call.duration_s
        call.end_reason = call.end_reason or status.value
        await call_capacity(request.app).release(call.call_sid)
        if call.direction == CallDirection.OUTBOUND.value:  # the business's outbound semaphore
            await OutboundSlots(resources_of(request).redis).release(call.business_id, call.id)
        # After the commit: summary, lead, timeline and the call.completed webhook (worker, high queue).
        enqueue_after_commit(
            db,
            resources_of(request).job_pool,
            JobName.CALLS_FINALIZE,
            call.call_sid,
            queue=Queue.HIGH,
            job_id=f"call-finalize:{call.call_sid}",
        )
    elif STATUS_RANK[status] > STATUS_RANK.get(current, -1):
        call.status = status.value
        if status is CallStatus.IN_PROGRESS and call.answered_at is None:
            call.answered_at = func.now()
    log.debug("call_status.recorded", call_sid=call.call_sid, status=call.status)
    return Response(status_code=204)


@router.post(
    "/webhook/stream_status", status_code=204, operation_id="twilio_stream_status", include_in_schema=False
)
async def stream_status(request: Request, db: DbSession) -> Response:
    params = await signed_form(request, resources_of(request).settings)
    event, call_sid = params.get("StreamEvent", ""), params.get("CallSid", "")
    if event == "stream-error":
        log.warning("call.stream_error", call_sid=call_sid, error=params.get("StreamError", "")[:300])
    else:
        log.debug("call.stream_status", call_sid=call_sid, stream_event=event)
    stream_sid = params.get("StreamSid", "")
    if stream_sid and call_sid:
        call = await db.scalar(select(Call).where(Call.call_sid == call_sid))
        if call is not None and call.stream_sid is None:
            call.stream_sid = stream_sid[:64]
    return Response(status_code=204)
