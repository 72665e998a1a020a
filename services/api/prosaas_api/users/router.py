"""/api/users: the people of the caller's business (owners and admins manage them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from prosaas_api.auth.password_reset import send_invitation
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, api_settings, require, revoke_session_tokens
from prosaas_api.ids import MAX_ROW_ID, RowId
from prosaas_api.settings import ApiSettings
from prosaas_api.users import service
from prosaas_api.users.schemas import UserInvite, UserOut, UserPage, UserUpdate
from prosaas_common.db import after_commit
from prosaas_common.jobs import Queue, deliver_email_after_commit
from prosaas_common.models import Business, User
from prosaas_common.web import DbSession, resources_of

router = APIRouter(prefix="/api/users", tags=["users"])
Manager = Annotated[Principal, Depends(require(Permission.USERS_MANAGE))]
Settings = Annotated[ApiSettings, Depends(api_settings)]


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=user.role,
        is_active=user.is_active,
        invited=user.password_hash is None,
        last_login_at=user.last_login_at,
        created_at=user.created_at,
    )


@router.get("", operation_id="users_list", response_model=UserPage)
async def list_users(
    principal: Manager,
    db: DbSession,
    after: Annotated[int | None, Query(gt=0, le=MAX_ROW_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> UserPage:
    query = service.UserRepository(db, principal).query().order_by(User.id).limit(limit + 1)
    if after is not None:
        query = query.where(User.id > after)
    rows = list((await db.scalars(query)).all())
    page = rows[:limit]
    return UserPage(items=[user_out(u) for u in page], next_after=page[-1].id if len(rows) > limit else None)


@router.post(
    "",
    operation_id="users_invite",
    status_code=201,
    response_model=UserOut,
    responses={403: {"description": "only owners invite owners"}, 409: {"description": "e-mail taken"}},
)
async def invite_user(
    body: UserInvite, principal: Manager, request: Request, db: DbSession, settings: Settings
) -> UserOut:
    """Create the user and e-mail them a link (7 days) to choose their password."""
    user = await service.invite(db, principal, body.email, body.full_name, body.role)
    business = await db.get(Business, user.business_id)
    name = business.name if business else "your business"
    email_id = await send_invitation(db, settings, user, name)
    if email_id is not None:
        deliver_email_after_commit(db, resources_of(request).job_pool, email_id, queue=Queue.HIGH)
    return user_out(user)


@router.patch("/{user_id}", operation_id="users_update", response_model=UserOut)
async def update_user(user_id: RowId, body: UserUpdate, principal: Manager, db: DbSession) -> UserOut:
    return user_out(await service.change(db, principal, user_id, body.full_name, body.role))


async def _set_active(
    user_id: RowId, active: bool, principal: Principal, request: Request, db: DbSession, settings: ApiSettings
) -> UserOut:
    ended = await service.set_active(db, principal, user_id, active)
    redis = resources_of(request).redis

    async def refuse_their_tokens() -> None:
        for session_id in ended:
            await revoke_session_tokens(redis, session_id, settings.access_token_ttl)

    after_commit(db, refuse_their_tokens)
    return user_out(await service.UserRepository(db, principal).get(user_id))


@router.post("/{user_id}/deactivate", operation_id="users_deactivate", response_model=UserOut)
async def deactivate_user(
    user_id: RowId, principal: Manager, request: Request, db: DbSession, settings: Settings
) -> UserOut:
    """The user can no longer sign in; their open sessions end at once. Not oneself (409): an account
    is never locked out by its own click."""
    if user_id == principal.user_id and not principal.impersonating:
        raise HTTPException(status_code=409, detail="you cannot deactivate your own account")
    return await _set_active(user_id, False, principal, request, db, settings)


@router.post("/{user_id}/activate", operation_id="users_activate", response_model=UserOut)
async def activate_user(
    user_id: RowId, principal: Manager, request: Request, db: DbSession, settings: Settings
) -> UserOut:
    return await _set_active(user_id, True, principal, request, db, settings)
