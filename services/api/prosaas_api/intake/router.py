"""/api/intake-endpoints: the business's inbound lead webhooks (at most five), managed by owners and
admins. A secret is shown once, when the endpoint is created or its secret rotated; only its SHA-256
hash is stored. Every change is audited (never with the secret)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response
from sqlalchemy import func, select

from prosaas_api import audit
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, api_settings, require
from prosaas_api.business.router import current_business
from prosaas_api.intake.schemas import (
    IntakeEndpointCreate,
    IntakeEndpointList,
    IntakeEndpointOut,
    IntakeEndpointUpdate,
    IntakeEndpointWithSecret,
)
from prosaas_api.leads.query import StatusRepository
from prosaas_api.settings import ApiSettings
from prosaas_api.tenancy import TenantRepository, not_found
from prosaas_common.models import MAX_INTAKE_ENDPOINTS, LeadIntakeEndpoint
from prosaas_common.web import DbSession

router = APIRouter(prefix="/api/intake-endpoints", tags=["intake"])
Manager = Annotated[Principal, Depends(require(Permission.BUSINESS_MANAGE))]
Settings = Annotated[ApiSettings, Depends(api_settings)]
PUBLIC_PATH = "/api/webhook/leads/{}"
ENTITY = "intake_endpoint"
MISSING: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such endpoint in this business (malformed ids too)"}
}


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> tuple[str, str]:
    """A fresh secret and its hash."""
    secret = secrets.token_urlsafe(24)
    return secret, hash_secret(secret)


class IntakeEndpointRepository(TenantRepository[LeadIntakeEndpoint]):
    model = LeadIntakeEndpoint
    label = "intake endpoint"

    async def find(self, raw_id: str, *, for_update: bool = False) -> LeadIntakeEndpoint:
        """The endpoint by its id as written in the path; 404 for malformed and foreign ids alike."""
        try:
            endpoint_id = uuid.UUID(raw_id)
        except ValueError:
            raise not_found(self.label) from None
        statement = self.query().where(LeadIntakeEndpoint.id == endpoint_id)
        if for_update:
            statement = statement.with_for_update()
        endpoint = await self.db.scalar(statement)
        if endpoint is None:
            raise not_found(self.label)
        return endpoint

    async def count(self) -> int:
        return int(await self.db.scalar(select(func.count()).select_from(self.query().subquery())) or 0)


def endpoint_out(endpoint: LeadIntakeEndpoint, settings: ApiSettings) -> IntakeEndpointOut:
    path = PUBLIC_PATH.format(endpoint.id)
    return IntakeEndpointOut(
        id=endpoint.id,
        name=endpoint.name,
        url_path=path,
        url=settings.app_url.rstrip("/") + path,
        target_status_id=endpoint.target_status_id,
        source=endpoint.source,
        is_active=endpoint.is_active,
        last_used_at=endpoint.last_used_at,
        created_at=endpoint.created_at,
    )


def with_secret(endpoint: LeadIntakeEndpoint, settings: ApiSettings, secret: str) -> IntakeEndpointWithSecret:
    return IntakeEndpointWithSecret(**endpoint_out(endpoint, settings).model_dump(), secret=secret)


def described(endpoint: LeadIntakeEndpoint) -> dict[str, Any]:
    """What the audit trail keeps of an endpoint (never the secret or its hash)."""
    return {
        "name": endpoint.name,
        "target_status_id": endpoint.target_status_id,
        "source": endpoint.source,
        "is_active": endpoint.is_active,
    }


@router.get("", operation_id="intake_endpoints_list", response_model=IntakeEndpointList)
async def list_endpoints(principal: Manager, db: DbSession, settings: Settings) -> IntakeEndpointList:
    query = IntakeEndpointRepository(db, principal).query()
    rows = await db.scalars(query.order_by(LeadIntakeEndpoint.created_at, LeadIntakeEndpoint.id))
    return IntakeEndpointList(
        items=[endpoint_out(row, settings) for row in rows], max_endpoints=MAX_INTAKE_ENDPOINTS
    )


@router.post(
    "",
    operation_id="intake_endpoints_create",
    status_code=201,
    response_model=IntakeEndpointWithSecret,
    responses={409: {"description": "the business already has the maximum number of endpoints"}},
)
async def create_endpoint(
    body: IntakeEndpointCreate, principal: Manager, db: DbSession, settings: Settings
) -> IntakeEndpointWithSecret:
    """A new endpoint; the answer carries its secret, which is never shown again."""
    # The business row lock serialises creates, so two at once cannot pass the count together.
    await current_business(db, principal, for_update=True)
    repository = IntakeEndpointRepository(db, principal)
    if await repository.count() >= MAX_INTAKE_ENDPOINTS:
        raise HTTPException(
            status_code=409,
            detail=f"a business can have at most {MAX_INTAKE_ENDPOINTS} intake endpoints; "
            "delete or reuse one",
        )
    await StatusRepository(db, principal).check("target_status_id", body.target_status_id)
    secret, secret_hash = new_secret()
    endpoint = await repository.add(
        LeadIntakeEndpoint(
            name=body.name,
            secret_hash=secret_hash,
            target_status_id=body.target_status_id,
            source=body.source,
            is_active=True,
        )
    )
    await db.refresh(endpoint)
    await audit.record(
        db, principal, "intake_endpoint.created", ENTITY, str(endpoint.id), described(endpoint)
    )
    return with_secret(endpoint, settings, secret)


@router.get(
    "/{endpoint_id}", operation_id="intake_endpoints_get", response_model=IntakeEndpointOut, responses=MISSING
)
async def get_endpoint(
    endpoint_id: str, principal: Manager, db: DbSession, settings: Settings
) -> IntakeEndpointOut:
    return endpoint_out(await IntakeEndpointRepository(db, principal).find(endpoint_id), settings)


@router.patch(
    "/{endpoint_id}",
    operation_id="intake_endpoints_update",
    response_model=IntakeEndpointOut,
    responses=MISSING,
)
async def update_endpoint(
    endpoint_id: str, body: IntakeEndpointUpdate, principal: Manager, db: DbSession, settings: Settings
) -> IntakeEndpointOut:
    endpoint = await IntakeEndpointRepository(db, principal).find(endpoint_id, for_update=True)
    changes = body.model_dump(exclude_unset=True)
    if "target_status_id" in changes:
        await StatusRepository(db, principal).check("target_status_id", changes["target_status_id"])
    before = described(endpoint)
    changed = {key: value for key, value in changes.items() if before[key] != value}
    for key, value in changed.items():
        setattr(endpoint, key, value)
    if changed:
        await db.flush()
        await db.refresh(endpoint)
        await audit.record(
            db,
            principal,
            "intake_endpoint.updated",
            ENTITY,
            str(endpoint.id),
            {"before": {key: before[key] for key in changed}, "after": changed},
        )
    return endpoint_out(endpoint, settings)


@router.delete("/{endpoint_id}", operation_id="intake_endpoints_delete", status_code=204, responses=MISSING)
async def delete_endpoint(endpoint_id: str, principal: Manager, db: DbSession) -> Response:
    """Posts to it answer 401 from now on; the leads it created stay."""
    endpoint = await IntakeEndpointRepository(db, principal).find(endpoint_id, for_update=True)
    entity_id, details = str(endpoint.id), described(endpoint)
    await db.delete(endpoint)
    await db.flush()
    await audit.record(db, principal, "intake_endpoint.deleted", ENTITY, entity_id, details)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    operation_id="intake_endpoints_rotate_secret",
    response_model=IntakeEndpointWithSecret,
    responses=MISSING,
)
async def rotate_secret(
    endpoint_id: str, principal: Manager, db: DbSession, settings: Settings
) -> IntakeEndpointWithSecret:
    """A new secret, shown once; the old one stops working at once."""
    endpoint = await IntakeEndpointRepository(db, principal).find(endpoint_id, for_update=True)
    secret, endpoint.secret_hash = new_secret()
    await db.flush()
    await db.refresh(endpoint)
    await audit.record(db, principal, "intake_endpoint.secret_rotated", ENTITY, str(endpoint.id))
    return with_secret(endpoint, settings, secret)
