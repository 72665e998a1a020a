"""/api/webhooks/deliveries: the business's outbound webhook deliveries (owners and admins).

A delivery is ``pending`` while the worker tries it (up to 11 POSTs over about a day), then ``delivered``
or ``dead``. Re-sending puts it back to ``pending`` with its attempts kept and a new delivery round
enqueued after the commit:

* ``dead`` or ``delivered`` → sent again now (the receiver sees the same delivery id: it can dedupe);
* ``pending`` after a failed attempt → tried now instead of waiting for the backoff (the waiting round
  stands down when it sees the newer one's attempt);
* ``pending`` with no attempt yet → 409: the first attempt is already queued.

Every re-send is audited (``webhook.resent``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from prosaas_api import audit
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.ids import MAX_ROW_ID, RowId
from prosaas_api.tenancy import TenantRepository
from prosaas_api.webhooks.schemas import DeliveryDetail, DeliveryOut, DeliveryPage
from prosaas_common.jobs import enqueue_after_commit
from prosaas_common.models.webhook import DeliveryStatus, WebhookDelivery
from prosaas_common.web import DbSession, resources_of
from prosaas_common.webhooks import DELIVER_JOB, DELIVER_QUEUE, delivery_job_id

router = APIRouter(prefix="/api/webhooks/deliveries", tags=["webhooks"])
Manager = Annotated[Principal, Depends(require(Permission.BUSINESS_MANAGE))]
ENTITY = "webhook_delivery"
MISSING: dict[int | str, dict[str, Any]] = {404: {"description": "no such delivery in this business"}}


class DeliveryRepository(TenantRepository[WebhookDelivery]):
    model = WebhookDelivery
    label = "webhook delivery"


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(row, from_attributes=True)


@router.get("", operation_id="webhooks_list_deliveries", response_model=DeliveryPage)
async def list_deliveries(
    principal: Manager,
    db: DbSession,
    status: Annotated[DeliveryStatus | None, Query(description="only deliveries in this state")] = None,
    event_type: Annotated[
        str | None, Query(min_length=1, max_length=60, description="e.g. lead.created")
    ] = None,
    before: Annotated[
        int | None, Query(gt=0, le=MAX_ROW_ID, description="only deliveries older than this id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryPage:
    """Deliveries newest first (keyset pagination on the id), without payloads."""
    deliveries = DeliveryRepository(db, principal)
    query = deliveries.query()
    if status is not None:
        query = query.where(WebhookDelivery.status == status.value)
    if event_type is not None:
        query = query.where(WebhookDelivery.event_type == event_type)
    page, next_before = await deliveries.newest_first(query, before, limit)
    return DeliveryPage(items=[delivery_out(row) for row in page], next_before=next_before)


@router.get(
    "/{delivery_id}", operation_id="webhooks_get_delivery", response_model=DeliveryDetail, responses=MISSING
)
async def get_delivery(delivery_id: RowId, principal: Manager, db: DbSession) -> DeliveryDetail:
    """One delivery with the event data it sends."""
    row = await DeliveryRepository(db, principal).get(delivery_id)
    return DeliveryDetail.model_validate(row, from_attributes=True)


@router.post(
    "/{delivery_id}/resend",
    operation_id="webhooks_resend_delivery",
    status_code=202,
    response_model=DeliveryOut,
    responses={**MISSING, 409: {"description": "the delivery's first attempt is still queued"}},
)
async def resend_delivery(
    delivery_id: RowId, principal: Manager, db: DbSession, request: Request
) -> DeliveryOut:
    """Send the delivery again now (see the module notes for each state); answers it as queued."""
    row = await DeliveryRepository(db, principal).get(delivery_id, for_update=True)
    if row.status == DeliveryStatus.PENDING and row.attempts == 0:
        raise HTTPException(status_code=409, detail="the first attempt of this delivery is still queued")
    previous = row.status
    row.status = DeliveryStatus.PENDING.value
    row.delivered_at = None
    row.next_attempt_at = datetime.now(UTC)
    await db.flush()
    enqueue_after_commit(
        db,
        resources_of(request).job_pool,
        DELIVER_JOB,
        row.id,
        row.attempts,
        queue=DELIVER_QUEUE,
        job_id=delivery_job_id(row.id, row.attempts),
    )
    await audit.record(
        db,
        principal,
        "webhook.resent",
        ENTITY,
        row.id,
        {"previous_status": previous, "attempts": row.attempts},
    )
    return delivery_out(row)
