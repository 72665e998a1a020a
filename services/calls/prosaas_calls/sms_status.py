"""``POST /webhook/sms_status?message_id=N``: Twilio's delivery status callbacks for our messages.

The worker gives every SMS this callback URL with our message id. A signed callback records Twilio's
status on the row; the row's own status only moves forward (``sending`` → ``sent`` → ``delivered`` /
``undelivered`` / ``failed``), so callbacks arriving out of order never undo a later one.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select

from prosaas_calls.twilio_auth import signed_form
from prosaas_common.logging import get_logger
from prosaas_common.models import MessageStatus, OutboundMessage
from prosaas_common.web import DbSession, resources_of

router = APIRouter(tags=["twilio"])
log = get_logger("prosaas.calls.sms_status")

# Twilio's message status → ours (statuses not listed leave our status as it is).
OUR_STATUS = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
}
RANK = {
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
}


@router.post(
    "/webhook/sms_status", status_code=204, operation_id="twilio_sms_status", include_in_schema=False
)
async def sms_status(request: Request, db: DbSession) -> Response:
    params = await signed_form(request, resources_of(request).settings)
    raw_id = request.query_params.get("message_id", "")
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    twilio_status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    if not raw_id.isdigit() or len(raw_id) > 18 or not sid:
        log.debug("sms_status.ignored", reason="no message id or sid", message_id=raw_id[:20])
        return Response(status_code=204)
    message = await db.scalar(
        select(OutboundMessage).where(OutboundMessage.id == int(raw_id)).with_for_update()
    )
    if message is None or (message.provider_sid is not None and message.provider_sid != sid):
        log.debug("sms_status.unknown_message", message_id=raw_id, sid=sid)
        return Response(status_code=204)
    message.provider_sid = sid
    message.provider_status = twilio_status[:32] or message.provider_status
    ours = OUR_STATUS.get(twilio_status)
    current = MessageStatus(message.status)
    if ours is not None and RANK.get(ours, 0) > RANK.get(current, 0) and current != MessageStatus.CANCELLED:
        message.status = ours.value
        if ours == MessageStatus.DELIVERED:
            message.delivered_at = func.now()
        if message.sent_at is None:
            message.sent_at = func.now()
        if ours in (MessageStatus.FAILED, MessageStatus.UNDELIVERED):
            code = params.get("ErrorCode")
            message.last_error = f"Twilio error {code}" if code else f"Twilio status {twilio_status}"
    log.debug(
        "sms_status.recorded", message_id=message.id, twilio_status=twilio_status, status=message.status
    )
    return Response(status_code=204)
