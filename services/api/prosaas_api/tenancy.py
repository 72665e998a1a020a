"""Tenancy in one place: every query on tenant-owned rows goes through a repository bound to the
acting principal, which adds the ``business_id`` filter. Routes never write that filter themselves.

A principal without a business (a system admin not impersonating) has no tenant: 403. A row of another
business is indistinguishable from a missing one: 404, never 403 and never data.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar, cast

from fastapi import HTTPException
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped

from prosaas_api.auth.principal import Principal


class TenantOwned(Protocol):
    id: Mapped[int]
    business_id: Mapped[int]


ModelT = TypeVar("ModelT", bound=Any)


def tenant_of(principal: Principal) -> int:
    """The business the principal acts for; 403 for platform staff who are not impersonating."""
    if principal.business_id is None:
        raise HTTPException(status_code=403, detail="act as a business first (impersonate it)")
    return principal.business_id


def not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{what} not found")


class TenantRepository(Generic[ModelT]):
    """Queries on one tenant-owned model, always scoped to the principal's business."""

    model: type[ModelT]
    label: str = "item"

    def __init__(self, db: AsyncSession, principal: Principal) -> None:
        self.db = db
        self.principal = principal
        self.business_id = tenant_of(principal)

    def query(self) -> Select[ModelT]:
        return select(self.model).where(self.model.business_id == self.business_id)

    async def get(self, item_id: int, *, for_update: bool = False) -> ModelT:
        statement = self.query().where(self.model.id == item_id)
        if for_update:
            statement = statement.with_for_update()
        item = await self.db.scalar(statement)
        if item is None:
            raise not_found(self.label)
        return cast(ModelT, item)

    async def newest_first(
        self, query: Select[ModelT], before: int | None, limit: int
    ) -> tuple[list[ModelT], int | None]:
        """A keyset page of ``query`` by descending id: (rows, the id to pass as ``before`` next, or
        None at the end)."""
        if before is not None:
            query = query.where(self.model.id < before)
        rows = list(await self.db.scalars(query.order_by(self.model.id.desc()).limit(limit + 1)))
        page = rows[:limit]
        return page, (page[-1].id if len(rows) > limit else None)

    async def add(self, item: ModelT) -> ModelT:
        item.business_id = self.business_id
        self.db.add(item)
        await self.db.flush()
        return item
