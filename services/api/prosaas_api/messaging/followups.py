"""/api/followup-rules: messages sent to a lead while it stays in a status, as steps counted from the
moment it entered the status (1-10 steps, delays strictly increasing). Leaving the status cancels the
steps not yet sent.

The worker plans a lead's steps when it enters the status, from the rules active at that moment; edits
here apply to messages planned afterwards. Deactivating or deleting a rule, or moving it to another
status, cancels its scheduled messages in the same transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from prosaas_api import audit
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.errors import conflict
from prosaas_api.ids import QueryId, RowId
from prosaas_api.leads.query import StatusRepository
from prosaas_api.messaging.planning_rules import PlanningRuleRepository
from prosaas_api.messaging.schemas import (
    FollowupRuleCreate,
    FollowupRuleList,
    FollowupRuleOut,
    FollowupRuleUpdate,
)
from prosaas_common.models import FollowupRule, OutboundMessage
from prosaas_common.web import DbSession

router = APIRouter(prefix="/api/followup-rules", tags=["messages"])
Reader = Annotated[Principal, Depends(require(Permission.LEADS_READ))]
Manager = Annotated[Principal, Depends(require(Permission.AUTOMATIONS_MANAGE))]
MAX_RULES = 100
ENTITY = "followup_rule"
LIMIT_RESPONSE: dict[int | str, dict[str, Any]] = {
    409: {"description": f"the business has {MAX_RULES} follow-up rules already"}
}


class FollowupRuleRepository(PlanningRuleRepository[FollowupRule]):
    model = FollowupRule
    label = "follow-up rule"
    entity = ENTITY
    message_column = OutboundMessage.followup_rule_id


def rule_out(rule: FollowupRule) -> FollowupRuleOut:
    return FollowupRuleOut.model_validate(rule, from_attributes=True)


@router.get("", operation_id="followup_rules_list", response_model=FollowupRuleList)
async def list_rules(principal: Reader, db: DbSession, status_id: QueryId | None = None) -> FollowupRuleList:
    """The business's rules (of one status with ``status_id``), oldest first."""
    query = FollowupRuleRepository(db, principal).query()
    if status_id is not None:
        query = query.where(FollowupRule.status_id == status_id)
    rows = await db.scalars(query.order_by(FollowupRule.id))
    return FollowupRuleList(items=[rule_out(r) for r in rows])


@router.post(
    "",
    operation_id="followup_rules_create",
    status_code=201,
    response_model=FollowupRuleOut,
    responses=LIMIT_RESPONSE,
)
async def create_rule(body: FollowupRuleCreate, principal: Manager, db: DbSession) -> FollowupRuleOut:
    """Applies to leads entering the status from now on."""
    repository = FollowupRuleRepository(db, principal)
    await StatusRepository(db, principal).check("status_id", body.status_id)
    if await repository.count() >= MAX_RULES:
        raise conflict(f"a business has at most {MAX_RULES} follow-up rules")
    rule = await repository.add(FollowupRule(**body.model_dump()))
    await db.refresh(rule)
    await audit.record(
        db, principal, f"{ENTITY}.created", ENTITY, rule.id, {"name": rule.name, "status_id": rule.status_id}
    )
    return rule_out(rule)


@router.get("/{rule_id}", operation_id="followup_rules_get", response_model=FollowupRuleOut)
async def get_rule(rule_id: RowId, principal: Reader, db: DbSession) -> FollowupRuleOut:
    return rule_out(await FollowupRuleRepository(db, principal).get(rule_id))


@router.patch("/{rule_id}", operation_id="followup_rules_update", response_model=FollowupRuleOut)
async def update_rule(
    rule_id: RowId, body: FollowupRuleUpdate, principal: Manager, db: DbSession
) -> FollowupRuleOut:
    """Fields left out stay; ``steps`` replaces all steps. Changes apply to messages planned
    afterwards; ``is_active: false`` or another ``status_id`` cancels the rule's scheduled messages."""
    repository = FollowupRuleRepository(db, principal)
    rule = await repository.get(rule_id, for_update=True)
    changes = body.model_dump(exclude_unset=True)
    if "status_id" in changes:
        await StatusRepository(db, principal).check("status_id", changes["status_id"])
    moved = changes.get("status_id", rule.status_id) != rule.status_id
    await repository.update(principal, rule, changes, cancels=moved or changes.get("is_active") is False)
    return rule_out(rule)


@router.delete("/{rule_id}", operation_id="followup_rules_delete", status_code=204)
async def delete_rule(rule_id: RowId, principal: Manager, db: DbSession) -> Response:
    """Cancels its scheduled messages; messages already sent stay (without the rule's id)."""
    await FollowupRuleRepository(db, principal).delete(principal, rule_id)
    return Response(status_code=204)
