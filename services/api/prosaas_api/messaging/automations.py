"""/api/automations: messages sent to a lead around its appointments (on booking, before the start,
after the end), one template each.

The worker plans an appointment's messages when the appointment is booked or changes, from the
automations active at that moment; edits here apply to messages planned afterwards (messages already
scheduled keep their time and text until their appointment changes). Deactivating or deleting an
automation cancels its scheduled messages in the same transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from prosaas_api import audit
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.errors import conflict
from prosaas_api.ids import RowId
from prosaas_api.messaging.planning_rules import PlanningRuleRepository
from prosaas_api.messaging.schemas import (
    AutomationCreate,
    AutomationList,
    AutomationOut,
    AutomationUpdate,
)
from prosaas_common.models import MessageAutomation, OutboundMessage
from prosaas_common.web import DbSession

router = APIRouter(prefix="/api/automations", tags=["messages"])
Reader = Annotated[Principal, Depends(require(Permission.LEADS_READ))]
Manager = Annotated[Principal, Depends(require(Permission.AUTOMATIONS_MANAGE))]
MAX_AUTOMATIONS = 50
ENTITY = "message_automation"
LIMIT_RESPONSE: dict[int | str, dict[str, Any]] = {
    409: {"description": f"the business has {MAX_AUTOMATIONS} automations already"}
}


class AutomationRepository(PlanningRuleRepository[MessageAutomation]):
    model = MessageAutomation
    label = "automation"
    entity = ENTITY
    message_column = OutboundMessage.automation_id


def automation_out(automation: MessageAutomation) -> AutomationOut:
    return AutomationOut.model_validate(automation, from_attributes=True)


@router.get("", operation_id="automations_list", response_model=AutomationList)
async def list_automations(principal: Reader, db: DbSession) -> AutomationList:
    """Every automation of the business, oldest first (at most 50)."""
    repository = AutomationRepository(db, principal)
    rows = await db.scalars(repository.query().order_by(MessageAutomation.id))
    return AutomationList(items=[automation_out(a) for a in rows])


@router.post(
    "",
    operation_id="automations_create",
    status_code=201,
    response_model=AutomationOut,
    responses=LIMIT_RESPONSE,
)
async def create_automation(body: AutomationCreate, principal: Manager, db: DbSession) -> AutomationOut:
    """Applies to appointments booked or changed from now on."""
    repository = AutomationRepository(db, principal)
    if await repository.count() >= MAX_AUTOMATIONS:
        raise conflict(f"a business has at most {MAX_AUTOMATIONS} automations")
    automation = await repository.add(MessageAutomation(**body.model_dump()))
    await db.refresh(automation)
    await audit.record(db, principal, f"{ENTITY}.created", ENTITY, automation.id, {"name": automation.name})
    return automation_out(automation)


@router.get("/{automation_id}", operation_id="automations_get", response_model=AutomationOut)
async def get_automation(automation_id: RowId, principal: Reader, db: DbSession) -> AutomationOut:
    return automation_out(await AutomationRepository(db, principal).get(automation_id))


@router.patch("/{automation_id}", operation_id="automations_update", response_model=AutomationOut)
async def update_automation(
    automation_id: RowId, body: AutomationUpdate, principal: Manager, db: DbSession
) -> AutomationOut:
    """Fields left out stay. Changes apply to messages planned afterwards; ``is_active: false``
    cancels the automation's scheduled messages."""
    repository = AutomationRepository(db, principal)
    automation = await repository.get(automation_id, for_update=True)
    changes = body.model_dump(exclude_unset=True)
    await repository.update(principal, automation, changes, cancels=changes.get("is_active") is False)
    return automation_out(automation)


@router.delete("/{automation_id}", operation_id="automations_delete", status_code=204)
async def delete_automation(automation_id: RowId, principal: Manager, db: DbSession) -> Response:
    """Cancels its scheduled messages; messages already sent stay (without the automation's id)."""
    await AutomationRepository(db, principal).delete(principal, automation_id)
    return Response(status_code=204)
