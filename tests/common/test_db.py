"""Engine, unit of work and the first tables, on the real Postgres."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from prosaas_common.db import after_commit, create_engine, create_session_factory, pool_status, unit_of_work
from prosaas_common.models import Business, User, UserRole
from prosaas_common.settings import CommonSettings, build_settings


class Boom(Exception):
    pass


def test_engine_uses_a_real_pool_with_pre_ping(database_url: str) -> None:
    settings = build_settings(CommonSettings, database_url=database_url, db_pool_size=4)
    engine = create_engine(settings, application_name="prosaas-test")
    assert not isinstance(engine.pool, NullPool)
    assert engine.pool._pre_ping
    assert pool_status(engine)["size"] == 4


async def test_unit_of_work_commits_on_success(db_engine: AsyncEngine) -> None:
    sessions = create_session_factory(db_engine)
    async with unit_of_work(sessions) as session:
        session.add(Business(name="Dental Care"))
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Business)) == 1


async def test_unit_of_work_rolls_back_when_the_block_raises(db_engine: AsyncEngine) -> None:
    sessions = create_session_factory(db_engine)

    async def add_then_fail() -> None:
        async with unit_of_work(sessions) as session:
            session.add(Business(name="Ghost"))
            await session.flush()
            raise Boom

    with pytest.raises(Boom):
        await add_then_fail()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Business)) == 0


async def test_business_defaults_come_from_the_database(db_engine: AsyncEngine) -> None:
    sessions = create_session_factory(db_engine)
    async with unit_of_work(sessions) as session:
        business = Business(name="Plumbing Co")
        session.add(business)
        await session.flush()
        await session.refresh(business)
    assert (business.timezone, business.locale, business.is_active) == ("UTC", "en", True)
    assert business.created_at.tzinfo is not None


@pytest.mark.parametrize(
    ("role", "has_business"),
    [(UserRole.SYSTEM_ADMIN, True), (UserRole.OWNER, False), ("janitor", True)],
)
async def test_role_and_business_must_agree(db_engine: AsyncEngine, role: str, has_business: bool) -> None:
    sessions = create_session_factory(db_engine)
    async with unit_of_work(sessions) as session:
        business = Business(name="Acme")
        session.add(business)
    with pytest.raises(IntegrityError):
        async with unit_of_work(sessions) as session:
            session.add(
                User(email="x@example.com", role=role, business_id=business.id if has_business else None)
            )


async def test_email_is_unique_whatever_its_case(db_engine: AsyncEngine) -> None:
    sessions = create_session_factory(db_engine)
    async with unit_of_work(sessions) as session:
        session.add(User(email="Staff@Example.com", role=UserRole.SYSTEM_ADMIN))
    with pytest.raises(IntegrityError):
        async with unit_of_work(sessions) as session:
            session.add(User(email="staff@example.COM", role=UserRole.SYSTEM_ADMIN))


async def test_after_commit_actions_run_only_after_a_commit(db_engine: AsyncEngine) -> None:
    sessions = create_session_factory(db_engine)
    ran: list[str] = []

    async def note(label: str) -> None:
        ran.append(label)

    async with unit_of_work(sessions) as session:
        session.add(Business(name="Kept"))
        after_commit(session, lambda: note("committed"))
        assert ran == [], "nothing runs before the commit"
    assert ran == ["committed"]

    async def fail_after_registering() -> None:
        async with unit_of_work(sessions) as session:
            after_commit(session, lambda: note("rolled back"))
            raise Boom

    with pytest.raises(Boom):
        await fail_after_registering()
    assert ran == ["committed"], "a rolled-back block runs nothing"


async def test_a_failing_after_commit_action_keeps_the_commit(db_engine: AsyncEngine) -> None:
    sessions = create_session_factory(db_engine)

    async def broken() -> None:
        raise ConnectionError("redis is down")

    async with unit_of_work(sessions) as session:
        session.add(Business(name="Still saved"))
        after_commit(session, broken)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Business)) == 1
