"""/api/business/current/settings and /phone-numbers: the AI agent, booking policy, webhooks, e-mail
sender name and numbers of the business the principal acts for.

The webhook signing secret is write-only: rotating it answers it once; reads show whether one is set and
its last four characters. Audit entries name the changed fields, never their values (prompts and
secrets stay out of the trail).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_api import audit
from prosaas_api.auth.principal import Principal
from prosaas_api.business import phone_numbers
from prosaas_api.business.phone_numbers import PhoneNumberRepository
from prosaas_api.business.router import Manager, Reader, current_business
from prosaas_api.business.settings_schemas import (
    WEBHOOK_SECRET_PREFIX,
    PhoneNumberIn,
    PhoneNumberOut,
    PhoneNumberUpdate,
    SettingsFields,
    SettingsOut,
    SettingsUpdate,
    WebhookSecretOut,
    field_error,
)
from prosaas_api.tenancy import tenant_of
from prosaas_common.models import Business, BusinessPhoneNumber, BusinessSettings
from prosaas_common.phones import to_e164
from prosaas_common.web import DbSession

router = APIRouter(prefix="/api/business/current", tags=["business"])
NumberId = Annotated[int, Path(gt=0, le=2**63 - 1)]
SETTINGS_FIELDS = tuple(SettingsFields.model_fields)


class SettingsRepository:
    """The settings row of the principal's business, created on first use for businesses made before
    settings existed (insert … on conflict do nothing, so two first requests cannot clash)."""

    def __init__(self, db: AsyncSession, principal: Principal) -> None:
        self.db = db
        self.business_id = tenant_of(principal)

    async def get(self, *, for_update: bool = False) -> BusinessSettings:
        query = select(BusinessSettings).where(BusinessSettings.business_id == self.business_id)
        if for_update:
            query = query.with_for_update()
        row = await self.db.scalar(query)
        if row is None:
            await self.db.execute(
                insert(BusinessSettings)
                .values(business_id=self.business_id)
                .on_conflict_do_nothing(index_elements=[BusinessSettings.business_id])
            )
            row = await self.db.scalar(query)
        assert row is not None
        return row


def phone_number_out(number: BusinessPhoneNumber) -> PhoneNumberOut:
    return PhoneNumberOut(id=number.id, e164=number.e164, label=number.label)


async def settings_out(
    db: AsyncSession, principal: Principal, business: Business, row: BusinessSettings
) -> SettingsOut:
    numbers = await PhoneNumberRepository(db, principal).all()
    secret = row.webhook_secret
    return SettingsOut(
        **{field: getattr(row, field) for field in SETTINGS_FIELDS},
        webhook_secret_set=bool(secret),
        webhook_secret_hint=secret[-4:] if secret else None,
        default_region=business.default_region,
        phone_numbers=[phone_number_out(n) for n in numbers],
        updated_at=row.updated_at,
    )


@router.get("/settings", operation_id="business_get_settings", response_model=SettingsOut)
async def get_settings(principal: Reader, db: DbSession) -> SettingsOut:
    business = await current_business(db, principal)
    return await settings_out(db, principal, business, await SettingsRepository(db, principal).get())


async def _transfer_number(
    db: AsyncSession, principal: Principal, raw: str | None, region: str
) -> str | None:
    if raw is None or not raw.strip():
        return None
    try:
        e164 = to_e164(raw, region)
    except ValueError as exc:
        raise field_error("transfer_number", str(exc), raw) from None
    if e164 in await PhoneNumberRepository(db, principal).e164s():
        raise field_error("transfer_number", "is one of this business's own numbers (calls would loop)", raw)
    return e164


@router.patch("/settings", operation_id="business_update_settings", response_model=SettingsOut)
async def update_settings(body: SettingsUpdate, principal: Manager, db: DbSession) -> SettingsOut:
    """Change any subset of the settings; the audit entry lists the names of the fields that changed."""
    business = await current_business(db, principal, for_update="default_region" in body.model_fields_set)
    row = await SettingsRepository(db, principal).get(for_update=True)
    values: dict[str, Any] = body.model_dump(include=body.model_fields_set)
    region = values.pop("default_region", None) or business.default_region
    if "transfer_number" in values:
        values["transfer_number"] = await _transfer_number(db, principal, values["transfer_number"], region)
    changed = sorted(field for field, value in values.items() if getattr(row, field) != value)
    for field in changed:
        setattr(row, field, values[field])
    if region != business.default_region:
        business.default_region = region
        changed.append("default_region")
    if changed:
        await db.flush()
        await db.refresh(row, ["updated_at"])
        await audit.record(
            db, principal, "business.settings_updated", "business", business.id, {"fields": sorted(changed)}
        )
    return await settings_out(db, principal, business, row)


@router.post(
    "/settings/webhook-secret/rotate",
    operation_id="business_rotate_webhook_secret",
    response_model=WebhookSecretOut,
)
async def rotate_webhook_secret(principal: Manager, db: DbSession) -> WebhookSecretOut:
    """A new signing secret for outbound webhooks, shown only in this response; the old one stops
    being used at once."""
    row = await SettingsRepository(db, principal).get(for_update=True)
    row.webhook_secret = WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)
    await db.flush()
    await audit.record(db, principal, "business.webhook_secret_rotated", "business", row.business_id)
    return WebhookSecretOut(webhook_secret=row.webhook_secret, rotated_at=datetime.now(UTC))


@router.post(
    "/phone-numbers",
    operation_id="business_add_phone_number",
    status_code=201,
    response_model=PhoneNumberOut,
    responses={409: {"description": "the number belongs to a business already, or the cap is reached"}},
)
async def add_phone_number(body: PhoneNumberIn, principal: Manager, db: DbSession) -> PhoneNumberOut:
    """Add a number; national notation is read in the business's default_region."""
    business = await current_business(db, principal)
    try:
        e164 = to_e164(body.number, business.default_region)
    except ValueError as exc:
        raise field_error("number", str(exc), body.number) from None
    number = await phone_numbers.add_number(PhoneNumberRepository(db, principal), e164, body.label)
    return phone_number_out(number)


@router.patch(
    "/phone-numbers/{number_id}", operation_id="business_update_phone_number", response_model=PhoneNumberOut
)
async def update_phone_number(
    number_id: NumberId, body: PhoneNumberUpdate, principal: Manager, db: DbSession
) -> PhoneNumberOut:
    number = await phone_numbers.relabel(PhoneNumberRepository(db, principal), number_id, body.label)
    return phone_number_out(number)


@router.delete(
    "/phone-numbers/{number_id}",
    operation_id="business_delete_phone_number",
    status_code=204,
    response_class=Response,
)
async def delete_phone_number(number_id: NumberId, principal: Manager, db: DbSession) -> Response:
    await phone_numbers.remove(PhoneNumberRepository(db, principal), number_id)
    return Response(status_code=204)
