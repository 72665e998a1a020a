"""User changes within the principal's business, with the owner rules: only owners make or unmake
owners, and a business always keeps at least one active owner. Owner changes lock the business row, so
two concurrent demotions cannot both pass the last-owner check."""

from __future__ import annotations

import uuid

from fastapi import HTTPException
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_api import audit
from prosaas_api.auth.permissions import Permission, allows
from prosaas_api.auth.principal import Principal
from prosaas_api.tenancy import TenantRepository
from prosaas_common.models import AuthSession, Business, User, UserRole


class UserRepository(TenantRepository[User]):
    model = User
    label = "user"


def _require_owner_rights(principal: Principal) -> None:
    if not allows(principal.role, Permission.OWNERS_MANAGE):
        raise HTTPException(status_code=403, detail="only an owner may make or change an owner")


async def _lock_owners(db: AsyncSession, business_id: int) -> int:
    """Lock the business row (serialising owner changes) and count its active owners."""
    await db.execute(select(Business.id).where(Business.id == business_id).with_for_update())
    count = await db.scalar(
        select(func.count())
        .select_from(User)
        .where(User.business_id == business_id, User.role == UserRole.OWNER, User.is_active)
    )
    return int(count or 0)


async def _keep_an_owner(db: AsyncSession, user: User, business_id: int) -> None:
    """Refuse (409) a change that would take away the business's last active owner."""
    if user.role == UserRole.OWNER and user.is_active and await _lock_owners(db, business_id) <= 1:
        raise HTTPException(status_code=409, detail="a business needs at least one active owner")


async def invite(db: AsyncSession, principal: Principal, email: str, full_name: str, role: str) -> User:
    if role == UserRole.OWNER:
        _require_owner_rights(principal)
    taken = await db.scalar(select(User.id).where(func.lower(User.email) == email.lower()))
    if taken is not None:
        raise HTTPException(
            status_code=409, detail={"message": "this e-mail already has an account", "field": "email"}
        )
    user = await UserRepository(db, principal).add(
        User(email=email, full_name=full_name, role=role, password_hash=None)
    )
    await audit.record(db, principal, "user.invited", "user", user.id, {"role": role})
    return user


async def change(
    db: AsyncSession, principal: Principal, user_id: int, full_name: str | None, role: str | None
) -> User:
    repository = UserRepository(db, principal)
    user = await repository.get(user_id, for_update=True)
    if role is not None and role != user.role:
        if UserRole.OWNER in (role, user.role):
            _require_owner_rights(principal)
        await _keep_an_owner(db, user, repository.business_id)
        await audit.record(
            db, principal, "user.role_changed", "user", user.id, {"from": user.role, "to": role}
        )
        user.role = role
    if full_name is not None:
        user.full_name = full_name
    await db.flush()
    return user


async def set_active(db: AsyncSession, principal: Principal, user_id: int, active: bool) -> list[uuid.UUID]:
    """(De)activate a user; deactivation ends their sessions. Returns the ended session ids."""
    repository = UserRepository(db, principal)
    user = await repository.get(user_id, for_update=True)
    if user.role == UserRole.OWNER:
        _require_owner_rights(principal)
    ended: list[uuid.UUID] = []
    if not active and user.is_active:
        await _keep_an_owner(db, user, repository.business_id)
        ended = list(
            await db.scalars(
                update(AuthSession)
                .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
                .values(revoked_at=func.now(), revoked_reason="user_deactivated")
                .returning(AuthSession.id)
            )
        )
    if user.is_active != active:
        user.is_active = active
        await audit.record(db, principal, "user.activated" if active else "user.deactivated", "user", user.id)
    await db.flush()
    return ended
