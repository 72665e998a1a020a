"""/api/messages: the business's messages to leads (planned by automations and follow-up rules, or
written by staff), cancelling a scheduled one, and ``POST /api/leads/{id}/messages``: a one-off SMS.

A one-off message is an ``outbound_messages`` row due at once; the worker's ``messages.send_due`` sends
it (woken after the commit, and on its schedule). Its dedup key makes a retried request harmless:
with an ``Idempotency-Key`` header a repeat answers the first message (200) instead of sending again.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from sqlalchemy import ColumnElement, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.errors import conflict, field_error
from prosaas_api.ids import QueryId, RowId
from prosaas_api.leads import service
from prosaas_api.leads.query import LeadRepository
from prosaas_api.messaging.schemas import MessageOut, MessagePage, MessageSend, MessageStatusName
from prosaas_api.tenancy import TenantRepository
from prosaas_common.jobs import MESSAGES_WAKE_JOB_ID, JobName, wake_after_commit
from prosaas_common.messaging.planner import sending_number
from prosaas_common.models import Lead, MessageChannelName, MessageStatus, OutboundMessage
from prosaas_common.web import DbSession, resources_of

router = APIRouter(tags=["messages"])
Reader = Annotated[Principal, Depends(require(Permission.LEADS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.LEADS_WRITE))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="repeat it on a retry: the same key answers the first message instead of sending again",
    ),
]


class MessageRepository(TenantRepository[OutboundMessage]):
    model = OutboundMessage
    label = "message"


async def cancel_scheduled(db: AsyncSession, business_id: int, *where: ColumnElement[bool]) -> int:
    """Cancel the business's ``scheduled`` messages matching ``where``; how many. A message the sender
    has claimed meanwhile (``sending``) is left alone: the row lock makes this wait, then skip it."""
    result = await db.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.business_id == business_id,
            OutboundMessage.status == MessageStatus.SCHEDULED.value,
            *where,
        )
        .values(status=MessageStatus.CANCELLED.value)
        .returning(OutboundMessage.id)
    )
    return len(result.all())


def message_kind(message: OutboundMessage) -> str:
    prefix = message.dedup_key.partition(":")[0]
    return prefix if prefix in ("appointment", "followup") else "manual"


def message_out(message: OutboundMessage) -> MessageOut:
    values: dict[str, Any] = {
        name: getattr(message, name) for name in MessageOut.model_fields if name != "kind"
    }
    return MessageOut.model_validate({**values, "kind": message_kind(message)})


@router.get("/api/messages", operation_id="messages_list", response_model=MessagePage)
async def list_messages(
    principal: Reader,
    db: DbSession,
    lead_id: QueryId | None = None,
    appointment_id: QueryId | None = None,
    status: Annotated[list[MessageStatusName] | None, Query(description="repeatable")] = None,
    before: QueryId | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MessagePage:
    """Newest first, keyset pages (pass ``next_before`` as ``before``)."""
    repository = MessageRepository(db, principal)
    query = repository.query()
    if lead_id is not None:
        query = query.where(OutboundMessage.lead_id == lead_id)
    if appointment_id is not None:
        query = query.where(OutboundMessage.appointment_id == appointment_id)
    if status:
        query = query.where(OutboundMessage.status.in_(status))
    rows, next_before = await repository.newest_first(query, before, limit)
    return MessagePage(items=[message_out(m) for m in rows], next_before=next_before)


@router.get("/api/messages/{message_id}", operation_id="messages_get", response_model=MessageOut)
async def get_message(message_id: RowId, principal: Reader, db: DbSession) -> MessageOut:
    return message_out(await MessageRepository(db, principal).get(message_id))


@router.post(
    "/api/messages/{message_id}/cancel",
    operation_id="messages_cancel",
    response_model=MessageOut,
    responses={409: {"description": 'the message is not scheduled: {"message", "status"}'}},
)
async def cancel_message(message_id: RowId, principal: Writer, db: DbSession, request: Request) -> MessageOut:
    """Only a ``scheduled`` message can be cancelled (one being sent, or already sent, cannot)."""
    message = await MessageRepository(db, principal).get(message_id, for_update=True)
    if message.status != MessageStatus.SCHEDULED:
        raise conflict(
            f"only a scheduled message can be cancelled; this one is {message.status}", status=message.status
        )
    message.status = MessageStatus.CANCELLED.value
    await db.flush()
    await db.refresh(message)
    if message.lead_id is not None:
        lead = await db.scalar(LeadRepository(db, principal).query().where(Lead.id == message.lead_id))
        if lead is not None:
            await service.writer_for(request, db, principal).activity(
                lead,
                "message_cancelled",
                f"Message cancelled: {message.body[:200]}",
                {"message_id": message.id},
            )
    return message_out(message)


@router.post(
    "/api/leads/{lead_id}/messages",
    operation_id="leads_send_message",
    status_code=201,
    response_model=MessageOut,
    responses={
        200: {"description": "a repeated Idempotency-Key: the message of the first request"},
        409: {"description": "the Idempotency-Key was used for another lead or text"},
    },
)
async def send_message(
    lead_id: RowId,
    body: MessageSend,
    principal: Writer,
    db: DbSession,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MessageOut:
    """An SMS to the lead's phone, sent at once from the business's first number; 201. The lead's
    timeline gets ``message_queued``."""
    lead = await LeadRepository(db, principal).get(lead_id)
    if not lead.phone:
        raise field_error("lead_id", "the lead has no phone number", location="path")
    repository = MessageRepository(db, principal)
    business_id = repository.business_id
    dedup_key = f"manual:{business_id}:{idempotency_key or uuid.uuid4().hex}"
    message_id = await db.scalar(
        insert(OutboundMessage)
        .values(
            business_id=business_id,
            dedup_key=dedup_key,
            channel=MessageChannelName.SMS.value,
            to_number=lead.phone,
            from_number=await sending_number(db, business_id),
            body=body.text,
            status=MessageStatus.SCHEDULED.value,
            send_at=func.now(),
            lead_id=lead.id,
            created_by_user_id=principal.user_id,
        )
        .on_conflict_do_nothing(index_elements=[OutboundMessage.dedup_key])
        .returning(OutboundMessage.id)
    )
    if message_id is None:  # this key was used before: answer that message
        first = await db.scalar(repository.query().where(OutboundMessage.dedup_key == dedup_key))
        assert first is not None  # the key names this business
        if (first.lead_id, first.body) != (lead.id, body.text):
            raise conflict("this Idempotency-Key was used for another message; use a new key")
        response.status_code = 200
        return message_out(first)
    message = await repository.get(message_id)
    await service.writer_for(request, db, principal).activity(
        lead,
        "message_queued",
        f"SMS: {body.text[:200]}",
        {"message_id": message.id, "channel": message.channel, "to": message.to_number},
    )
    wake_after_commit(
        db, resources_of(request).job_pool, JobName.MESSAGES_SEND_DUE, job_id=MESSAGES_WAKE_JOB_ID
    )
    return message_out(message)
