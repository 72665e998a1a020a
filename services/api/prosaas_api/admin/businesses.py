"""Businesses as platform staff see them: create (with owner, statuses, numbers), list, read, update,
deactivate and reactivate. Every change is recorded in the audit trail."""

from __future__ import annotations

import uuid

from fastapi import HTTPException
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_api import audit
from prosaas_api.admin.schemas import AdminBusinessOut, BusinessCreate
from prosaas_api.auth.password_reset import send_invitation
from prosaas_api.auth.principal import Principal
from prosaas_api.business.router import business_out
from prosaas_api.settings import ApiSettings
from prosaas_common.models import (
    AuthSession,
    Business,
    BusinessPhoneNumber,
    User,
    UserRole,
)
from prosaas_common.provision import provision_business


def conflict(detail: str, **extra: object) -> HTTPException:
    return HTTPException(status_code=409, detail={"message": detail, **extra})


async def numbers_of(db: AsyncSession, business_id: int) -> list[str]:
    rows = await db.scalars(
        select(BusinessPhoneNumber.e164)
        .where(BusinessPhoneNumber.business_id == business_id)
        .order_by(BusinessPhoneNumber.id)
    )
    return list(rows)


async def out(db: AsyncSession, business: Business) -> AdminBusinessOut:
    return AdminBusinessOut(
        **business_out(business).model_dump(),
        created_at=business.created_at,
        phone_numbers=await numbers_of(db, business.id),
    )


async def create(
    db: AsyncSession, settings: ApiSettings, principal: Principal, body: BusinessCreate
) -> tuple[Business, int | None]:
    """The business, its statuses, numbers and owner in the request's transaction; returns the
    business and the id of the owner's invitation e-mail."""
    taken_email = await db.scalar(select(User.id).where(func.lower(User.email) == body.owner.email.lower()))
    if taken_email is not None:
        raise conflict("an account with this e-mail already exists", field="owner.email")
    if body.phone_numbers:
        taken = list(
            await db.scalars(
                select(BusinessPhoneNumber.e164).where(BusinessPhoneNumber.e164.in_(body.phone_numbers))
            )
        )
        if taken:
            raise conflict("phone numbers already belong to another business", phone_numbers=sorted(taken))
    business = Business(
        name=body.name, timezone=body.timezone, locale=body.locale, default_region=body.default_region
    )
    db.add(business)
    await db.flush()
    await provision_business(db, business)
    for number in body.phone_numbers:
        db.add(BusinessPhoneNumber(business_id=business.id, e164=number))
    owner = User(
        email=body.owner.email,
        full_name=body.owner.full_name,
        role=UserRole.OWNER,
        business_id=business.id,
        password_hash=None,
    )
    db.add(owner)
    try:
        await db.flush()
    except IntegrityError:  # a concurrent request took the e-mail or a number in between
        raise conflict("the owner e-mail or a phone number was just taken; try again") from None
    invitation = await send_invitation(db, settings, owner, business.name)
    await audit.record(
        db,
        principal,
        "business.created",
        "business",
        business.id,
        {"owner_user_id": owner.id, "phone_numbers": body.phone_numbers},
    )
    return business, invitation


async def set_active(
    db: AsyncSession, principal: Principal, business: Business, active: bool
) -> list[uuid.UUID]:
    """(De)activate; deactivation ends every session of the business's users. Returns the ended ids."""
    business.is_active = active
    ended: list[uuid.UUID] = []
    if not active:
        users = select(User.id).where(User.business_id == business.id)
        ended = list(
            await db.scalars(
                update(AuthSession)
                .where(AuthSession.user_id.in_(users), AuthSession.revoked_at.is_(None))
                .values(revoked_at=func.now(), revoked_reason="business_deactivated")
                .returning(AuthSession.id)
            )
        )
    await audit.record(
        db, principal, "business.activated" if active else "business.deactivated", "business", business.id
    )
    return ended
