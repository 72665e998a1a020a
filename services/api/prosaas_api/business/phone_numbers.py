"""The business's own phone numbers: add (E.164, unique across every business), relabel, remove.

A number routes incoming calls to exactly one business, so the unique index on ``e164`` is the rule;
the look-up before inserting only gives a friendlier answer, and a concurrent insert of the same number
is caught as the IntegrityError it raises (409 either way).
"""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from prosaas_api import audit
from prosaas_api.tenancy import TenantRepository
from prosaas_common.models import Business, BusinessPhoneNumber

# Same cap as when platform staff create a business with its numbers.
MAX_PHONE_NUMBERS = 20


class PhoneNumberRepository(TenantRepository[BusinessPhoneNumber]):
    model = BusinessPhoneNumber
    label = "phone number"

    async def all(self) -> list[BusinessPhoneNumber]:
        return list(await self.db.scalars(self.query().order_by(BusinessPhoneNumber.id)))

    async def count(self) -> int:
        return int(await self.db.scalar(select(func.count()).select_from(self.query().subquery())) or 0)

    async def e164s(self) -> set[str]:
        return set(await self.db.scalars(self.query().with_only_columns(BusinessPhoneNumber.e164)))


def taken(e164: str) -> HTTPException:
    return HTTPException(
        status_code=409,
        detail={"message": f"{e164} already belongs to a business", "field": "number", "e164": e164},
    )


async def add_number(repo: PhoneNumberRepository, e164: str, label: str) -> BusinessPhoneNumber:
    """Add a normalised number to the principal's business (flushes); 409 when any business has it."""
    db = repo.db
    # Serialise additions per business so the cap holds under concurrent requests.
    await db.execute(select(Business.id).where(Business.id == repo.business_id).with_for_update())
    if await repo.count() >= MAX_PHONE_NUMBERS:
        raise HTTPException(
            status_code=409, detail=f"a business has at most {MAX_PHONE_NUMBERS} phone numbers"
        )
    if await db.scalar(select(BusinessPhoneNumber.id).where(BusinessPhoneNumber.e164 == e164)) is not None:
        raise taken(e164)
    number = BusinessPhoneNumber(e164=e164, label=label)
    try:
        async with db.begin_nested():
            await repo.add(number)
    except IntegrityError:  # another request added the same number since the look-up
        raise taken(e164) from None
    await audit.record(
        db, repo.principal, "business.phone_number_added", "business_phone_number", number.id, {"e164": e164}
    )
    return number


async def relabel(repo: PhoneNumberRepository, number_id: int, label: str) -> BusinessPhoneNumber:
    number = await repo.get(number_id, for_update=True)
    if number.label != label:
        number.label = label
        await repo.db.flush()
        await audit.record(
            repo.db,
            repo.principal,
            "business.phone_number_updated",
            "business_phone_number",
            number.id,
            {"fields": ["label"]},
        )
    return number


async def remove(repo: PhoneNumberRepository, number_id: int) -> None:
    number = await repo.get(number_id, for_update=True)
    await repo.db.delete(number)
    await repo.db.flush()
    await audit.record(
        repo.db,
        repo.principal,
        "business.phone_number_removed",
        "business_phone_number",
        number_id,
        {"e164": number.e164},
    )
