"""The demo seed: provisioned like a real business, realistic leads through the writer, idempotent."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import phonenumbers
import pytest
from arq.connections import ArqRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_api.auth.passwords import verify_password
from prosaas_api.seed import BUSINESS_NAME, DEMO_USERS, SeedConflict, SeedResult, demo_leads, seed_demo
from prosaas_common.db import create_session_factory, unit_of_work
from prosaas_common.jobs import Queue
from prosaas_common.models import (
    Business,
    BusinessPhoneNumber,
    BusinessSettings,
    DomainEvent,
    Lead,
    LeadActivity,
    LeadNote,
    LeadStatus,
    LeadStatusChange,
    User,
    UserRole,
)
from tests.support import ROOT, service_env

PASSWORD = "demo password 0123"
E164_US = re.compile(r"^\+1\d{10}$")


async def run_seed(
    engine: AsyncEngine, pool: ArqRedis, leads: int, password: str = PASSWORD, reset_password: bool = False
) -> SeedResult:
    async def job_pool() -> ArqRedis:
        return pool

    return await seed_demo(
        create_session_factory(engine),
        job_pool,
        password=password,
        reset_password=reset_password,
        leads=leads,
    )


async def test_seed_twice_gives_one_business_three_users_and_the_leads_once(
    db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    now = datetime.now(UTC)
    first = await run_seed(db_engine, pool, 120)
    second = await run_seed(db_engine, pool, 120, password="another password 456")

    assert (first.business_created, first.leads_created, first.leads_total) == (True, 120, 120)
    assert first.users_created == first.password_set == [email for _, email, _ in DEMO_USERS]
    assert (second.business_id, second.business_created) == (first.business_id, False)
    assert (second.users_created, second.password_set, second.leads_created) == ([], [], 0)
    assert second.leads_total == 120
    async with db_engine.connect() as conn:
        [business] = (await conn.execute(select(Business))).all()
        users = (await conn.execute(select(User.email, User.role, User.password_hash))).all()
        leads = (await conn.execute(select(Lead))).all()
        statuses = dict((await conn.execute(select(LeadStatus.id, LeadStatus.key))).all())
        phone_numbers = (await conn.scalars(select(BusinessPhoneNumber.e164))).all()
        settings_rows = await conn.scalar(select(func.count()).select_from(BusinessSettings))
        notes = await conn.scalar(select(func.count()).select_from(LeadNote))
        changes = (await conn.execute(select(LeadStatusChange.via, LeadStatusChange.created_at))).all()
    assert (business.name, business.timezone, business.default_region) == (
        BUSINESS_NAME,
        "America/New_York",
        "US",
    )
    assert phone_numbers == ["+12125550100"]
    assert settings_rows == 1
    assert sorted(statuses.values()) == sorted(["new", "contacted", "qualified", "won", "lost"])
    assert sorted((u.email, u.role) for u in users) == sorted((e, r.value) for r, e, _ in DEMO_USERS)
    # The second run had another password but no reset: the first one still signs in.
    assert all(verify_password(u.password_hash, PASSWORD) for u in users)

    phones = [lead.phone for lead in leads]
    assert len(set(phones)) == len(phones) == 120
    for phone in phones:
        assert E164_US.match(phone), phone
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone))
    by_status = Counter(statuses[lead.status_id] for lead in leads)
    assert set(by_status) == set(statuses.values())  # every kanban column has leads
    assert first.statuses == dict(by_status)
    assert {lead.source for lead in leads} == {"manual", "call", "webhook", "import"}
    assert len({lead.owner_user_id for lead in leads}) == 4  # three users and unassigned
    assert len({(lead.first_name, lead.last_name) for lead in leads}) > 80
    assert any(lead.tags for lead in leads)
    assert any(lead.company for lead in leads)
    assert notes
    ages = [now - lead.created_at for lead in leads]
    assert min(ages) >= timedelta(0)
    assert max(ages) <= timedelta(days=60, minutes=5)
    assert max(ages) > timedelta(days=40)
    for lead in leads:
        assert lead.created_at <= lead.status_changed_at <= lead.updated_at
    # Leads outside "new" moved there through the writer: one history row each, marked as the seed's.
    assert len(changes) == sum(count for key, count in by_status.items() if key != "new")
    assert {via for via, _ in changes} == {"seed"}
    assert all(now - at > timedelta(minutes=1) for _, at in changes)  # backdated with the lead


async def test_seed_writes_timeline_and_enqueues_events_after_commit(
    db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    await run_seed(db_engine, pool, 30)
    async with db_engine.connect() as conn:
        events = (await conn.execute(select(DomainEvent.id, DomainEvent.type))).all()
        kinds = Counter((await conn.scalars(select(LeadActivity.kind))).all())
    assert Counter(t for _, t in events)["lead.created"] == 30
    assert kinds["created"] == 30
    queued = await pool.zrange(Queue.DEFAULT.value, 0, -1)
    assert sorted(queued) == sorted(f"event:{event_id}".encode() for event_id, _ in events)


async def test_seed_tops_up_with_the_same_leads_and_can_reset_the_password(
    db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    await run_seed(db_engine, pool, 40)
    async with unit_of_work(create_session_factory(db_engine)) as db:
        lead = await db.scalar(select(Lead).order_by(Lead.id).limit(1))
        assert lead is not None
        await db.delete(lead)
    more = await run_seed(db_engine, pool, 60, password="a new password 789", reset_password=True)

    assert (more.leads_created, more.leads_total) == (21, 60)
    assert more.password_set == [email for _, email, _ in DEMO_USERS]
    expected = {spec["phone"] for spec in demo_leads(60)}
    assert {spec["phone"] for spec in demo_leads(40)} < expected
    async with db_engine.connect() as conn:
        phones = set((await conn.scalars(select(Lead.phone))).all())
        hashes = (await conn.scalars(select(User.password_hash))).all()
    assert phones == expected
    assert all(verify_password(h, "a new password 789") for h in hashes)


async def test_seed_refuses_a_demo_email_of_another_business(db_engine: AsyncEngine, pool: ArqRedis) -> None:
    async with unit_of_work(create_session_factory(db_engine)) as db:
        other = Business(name="Someone else")
        db.add(other)
        await db.flush()
        db.add(User(business_id=other.id, email="Admin@Demo.Prosaas.Local", role=UserRole.OWNER))

    with pytest.raises(SeedConflict, match=re.escape("admin@demo.prosaas.local")):
        await run_seed(db_engine, pool, 10)
    async with db_engine.connect() as conn:
        names = (await conn.scalars(select(Business.name))).all()
        leads = await conn.scalar(select(func.count()).select_from(Lead))
    assert (names, leads) == (["Someone else"], 0)


def test_seed_leads_are_deterministic_and_bounded() -> None:
    assert demo_leads(25, seed=7) == demo_leads(25, seed=7)
    assert demo_leads(25, seed=7) != demo_leads(25, seed=8)
    with pytest.raises(ValueError, match="demo leads"):
        demo_leads(1_000_000)


def seed_command(
    database_url: str, redis_url: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prosaas_api", "seed-demo", *args],
        env=service_env({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}),
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_seed_command_prints_the_sign_in_once(
    db_engine: AsyncEngine, database_url: str, redis_url: str
) -> None:
    first = seed_command(database_url, redis_url, "--leads", "15")
    second = seed_command(database_url, redis_url, "--leads", "15")
    refused = seed_command(database_url, redis_url, "--password-stdin", stdin="short\n")
    too_many = seed_command(database_url, redis_url, "--leads", "999999")

    assert first.returncode == 0, first.stderr
    assert "leads: 15 created, 15 in total" in first.stdout
    for _, email, _ in DEMO_USERS:
        assert email in first.stdout
    found = re.search(r"^password of .*: (\S+)  \(shown once", first.stdout, re.MULTILINE)
    assert found is not None, first.stdout
    async with db_engine.connect() as conn:
        hashes = (await conn.scalars(select(User.password_hash))).all()
    assert len(hashes) == 3
    assert all(verify_password(h, found.group(1)) for h in hashes)
    assert second.returncode == 0, second.stderr
    assert "leads: 0 created, 15 in total" in second.stdout
    assert "password: unchanged" in second.stdout
    assert found.group(1) not in second.stdout
    assert (refused.returncode, too_many.returncode) == (2, 2)
    assert "password refused" in refused.stderr
    assert "0 to 2000" in too_many.stderr
