"""Demo data for development: ``python -m prosaas_api seed-demo [--leads 200] [--password-stdin]``.

Creates (or tops up) one business, "Demo Dental Clinic", provisioned like every real business, with an
owner, an admin and an agent, and realistic leads spread over the kanban and the last 60 days. Leads go
through :class:`~prosaas_common.leads.writer.LeadWriter` (via ``seed``), so they carry the same timeline
entries, status history and domain events as leads made through the api.

Idempotent: the business is found again by its owner's e-mail (or its name), existing users keep their
password unless a new one is given, and only the demo leads whose phone is missing are created. The leads
are a pure function of ``seed`` and their index, so a second run finds the same phone numbers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prosaas_api.auth.passwords import hash_password
from prosaas_common.db import unit_of_work
from prosaas_common.events import JobPool
from prosaas_common.leads.values import email_or_none, phone_or_none
from prosaas_common.leads.writer import LeadWriter
from prosaas_common.models import Business, BusinessPhoneNumber, Lead, LeadStatus, User, UserRole
from prosaas_common.provision import provision_business

BUSINESS_NAME = "Demo Dental Clinic"
BUSINESS_PHONE = "+12125550100"
TIMEZONE = "America/New_York"
REGION = "US"
DEMO_USERS: tuple[tuple[UserRole, str, str], ...] = (
    (UserRole.OWNER, "owner@demo.prosaas.local", "Olivia Owner"),
    (UserRole.ADMIN, "admin@demo.prosaas.local", "Adam Admin"),
    (UserRole.AGENT, "agent@demo.prosaas.local", "Ava Agent"),
)
DEFAULT_SEED = 20240601
SPREAD_DAYS = 60
# Fictional numbers (555-0100 … 555-0199) in real area codes: valid for phonenumbers, never anyone's.
AREA_CODES = (
    "212", "646", "718", "917", "201", "973", "516", "631", "914", "203",
    "860", "617", "215", "267", "412", "202", "301", "410", "703", "312",
)  # fmt: skip
MAX_LEADS = len(AREA_CODES) * 100
# An advisory lock key ("seed" in ASCII) so two seeds never interleave.
SEED_LOCK_KEY = 0x73656564

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen",
    "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Luis", "Emily",
    "Andrew", "Priya", "Kevin", "Mei", "Brian", "Aisha", "Omar", "Sofia", "Diego", "Hannah",
    "Ethan", "Grace", "Noah", "Chloe", "Liam", "Fatima", "Mateo", "Zoe", "Raj", "Yuki",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Patel", "Kim", "Chen", "O'Brien", "Murphy", "Cohen", "Rossi", "Novak", "Silva", "Okafor",
)  # fmt: skip
COMPANIES = (
    "Acme Logistics", "Blue Harbor Insurance", "Northwind Traders", "Riverside School District",
    "Summit Health Partners", "Greenway Builders", "Brightline Media", "Hudson Valley Bank",
    "Metro Transit Authority", "Lakeside Realty", "Pinnacle Law Group", "Cedar Ridge Capital",
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")
SOURCES = (("call", 40), ("manual", 25), ("webhook", 20), ("import", 15))
TAGS = (
    "new-patient", "cleaning", "whitening", "implants", "orthodontics", "emergency", "insurance",
    "cash-pay", "referral", "follow-up", "vip", "spanish",
)  # fmt: skip
REASONS = (
    "Wants a routine cleaning and check-up",
    "Toothache on the lower left side",
    "Asked about teeth whitening prices",
    "Interested in clear aligners",
    "Chipped a front tooth",
    "Needs a crown replaced",
    "Asked whether we take Delta Dental",
    "Child's first dental visit",
    "Bleeding gums when brushing",
    "Second opinion on an implant",
)
INSURERS = ("Delta Dental", "Cigna", "Aetna", "MetLife", "Guardian", "none")
NOTES = (
    "Called back, left a voicemail.",
    "Prefers mornings before 10am.",
    "Sent the new-patient forms by e-mail.",
    "Asked for a cost estimate before booking.",
    "Will confirm after checking with their insurer.",
    "Booked a consultation, reminder to confirm the day before.",
    "Not reachable on the first try; try again Thursday.",
    "Referred by an existing patient.",
)
# Share of leads per kanban column, by status key (a key the business lacks leaves the lead in its default).
STATUS_WEIGHTS = {"new": 35, "contacted": 25, "qualified": 15, "won": 12, "lost": 13}

# Timeline rows of a lead get the lead's backdated times (executemany over lead_id, created, changed, last).
BACKDATE_TIMELINE = (
    "UPDATE lead_activities SET created_at = CASE kind WHEN 'created' THEN CAST(:created AS timestamptz) "
    "WHEN 'status_changed' THEN CAST(:changed AS timestamptz) ELSE CAST(:last AS timestamptz) END "
    "WHERE lead_id = :lead_id",
    "UPDATE lead_status_changes SET created_at = CAST(:changed AS timestamptz) WHERE lead_id = :lead_id",
    "UPDATE lead_notes SET created_at = CAST(:last AS timestamptz) WHERE lead_id = :lead_id",
)


class SeedConflict(Exception):
    """A demo e-mail belongs to someone outside the demo business: nothing is written."""


@dataclass
class SeedResult:
    business_id: int
    business_created: bool
    emails: list[str]
    users_created: list[str]
    password_set: list[str]  # the e-mails whose password is the one given to this run
    leads_created: int
    leads_total: int
    statuses: dict[str, int] = field(default_factory=dict)  # key → leads of the business


def demo_leads(count: int, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """``count`` lead specs: column values plus ``status_key``, ``owner``, ``age_days`` and ``notes``."""
    if not 0 <= count <= MAX_LEADS:
        raise ValueError(f"between 0 and {MAX_LEADS} demo leads")
    numbers = [f"({area}) 555-01{n:02d}" for area in AREA_CODES for n in range(100)]
    random.Random(seed).shuffle(numbers)  # noqa: S311
    specs = []
    for index in range(count):
        rng = random.Random(f"{seed}:{index}")  # noqa: S311
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = None
        if rng.random() < 0.85:
            local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randint(1, 99)}"))
            email = email_or_none(local.replace("'", "") + "@" + rng.choice(EMAIL_DOMAINS))
        source = rng.choices([s for s, _ in SOURCES], weights=[w for _, w in SOURCES])[0]
        fields: dict[str, Any] = {}
        if rng.random() < 0.4:
            fields["insurance"] = rng.choice(INSURERS)
        specs.append(
            {
                "first_name": first,
                "last_name": last,
                "phone": phone_or_none(numbers[index], REGION),
                "email": email,
                "company": rng.choice(COMPANIES) if rng.random() < 0.3 else "",
                "source": source,
                "tags": sorted(rng.sample(TAGS, rng.choice((0, 1, 1, 2, 2, 3)))),
                "reason": rng.choice(REASONS) if source in ("call", "webhook") or rng.random() < 0.3 else "",
                "fields": fields,
                "status_key": rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0],
                "owner": rng.choice(("owner", "admin", "agent", "agent", None)),
                "age_days": rng.uniform(0.05, SPREAD_DAYS),
                "notes": rng.sample(NOTES, rng.choice((0, 0, 0, 1, 1, 2))),
            }
        )
    return specs


async def _business(db: AsyncSession) -> tuple[Business, bool]:
    owner_email = DEMO_USERS[0][1]
    found = await db.scalar(
        select(Business)
        .join(User, User.business_id == Business.id)
        .where(func.lower(User.email) == owner_email, User.role == UserRole.OWNER)
    )
    found = found or await db.scalar(
        select(Business).where(Business.name == BUSINESS_NAME).order_by(Business.id).limit(1)
    )
    if found is not None:
        return found, False
    business = Business(name=BUSINESS_NAME, timezone=TIMEZONE, locale="en", default_region=REGION)
    db.add(business)
    await db.flush()
    await provision_business(db, business)
    await db.execute(
        pg_insert(BusinessPhoneNumber)
        .values(business_id=business.id, e164=BUSINESS_PHONE, label="Front desk")
        .on_conflict_do_nothing(index_elements=["e164"])
    )
    return business, True


async def _users(
    db: AsyncSession, business_id: int, password: str, reset_password: bool
) -> tuple[dict[str, User], list[str], list[str]]:
    """The demo users by role name, those created and those whose password was set.

    New users get ``password``; existing ones keep theirs unless ``reset_password``.
    """
    users: dict[str, User] = {}
    created: list[str] = []
    password_set: list[str] = []
    for role, email, full_name in DEMO_USERS:
        user = await db.scalar(select(User).where(func.lower(User.email) == email))
        if user is not None and user.business_id != business_id:
            raise SeedConflict(
                f"{email} already belongs to another account; remove it or use another database"
            )
        if user is None:
            user = User(business_id=business_id, email=email, full_name=full_name, role=role)
            db.add(user)
            created.append(email)
        if user.password_hash is None or email in created or reset_password:
            user.password_hash = hash_password(password)
            password_set.append(email)
        users[role.value] = user
    await db.flush()
    return users, created, password_set


async def _create_leads(
    db: AsyncSession,
    business_id: int,
    users: dict[str, User],
    pool: JobPool,
    specs: list[dict[str, Any]],
    now: datetime,
) -> int:
    statuses = {
        s.key: s
        for s in await db.scalars(
            select(LeadStatus).where(LeadStatus.business_id == business_id).order_by(LeadStatus.position)
        )
    }
    existing = set(
        await db.scalars(select(Lead.phone).where(Lead.business_id == business_id, Lead.phone.is_not(None)))
    )
    writers = {
        role: LeadWriter(db, business_id, actor_user_id=user.id, via="seed", pool=pool)
        for role, user in users.items()
    }
    default = await writers["owner"].default_status()
    lead_times: list[dict[str, Any]] = []
    timeline: list[dict[str, Any]] = []
    created = 0
    for spec in specs:
        if spec["phone"] in existing:
            continue
        owner = users[spec["owner"]] if spec["owner"] else None
        writer = writers[spec["owner"] or "owner"]
        values = {key: spec[key] for key in ("first_name", "last_name", "phone", "email", "company")}
        values |= {"source": spec["source"], "tags": spec["tags"], "reason": spec["reason"]}
        values |= {"fields": spec["fields"], "owner_user_id": owner.id if owner else None}
        lead, _ = await writer.upsert(values, status_id=default.id)
        created_at = now - timedelta(days=spec["age_days"])
        changed_at = created_at
        target = statuses.get(spec["status_key"])
        if target is not None and target.id != lead.status_id:
            await writer.change_status(lead, target.id)
            changed_at = created_at + (now - created_at) * 0.4
        last = changed_at
        for position, body in enumerate(spec["notes"], start=1):
            await writer.add_note(lead, body)
            last = max(last, created_at + (now - created_at) * 0.2 * position)
        lead_times.append(
            {"id": lead.id, "created_at": created_at, "updated_at": last, "status_changed_at": changed_at}
        )
        timeline.append({"lead_id": lead.id, "created": created_at, "changed": changed_at, "last": last})
        existing.add(spec["phone"])
        created += 1
    if lead_times:
        # Backdate what was just written so lists, filters and the timeline look lived in.
        await db.execute(update(Lead), lead_times)
        for statement in BACKDATE_TIMELINE:
            await db.execute(text(statement), timeline)
    return created


async def seed_demo(
    factory: async_sessionmaker[AsyncSession],
    pool: JobPool,
    *,
    password: str,
    reset_password: bool = False,
    leads: int = 200,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
) -> SeedResult:
    """Create or top up the demo business in one transaction (its events are enqueued after commit).

    ``password`` goes to the demo users created now (and to all of them with ``reset_password``).
    """
    specs = demo_leads(leads, seed)
    async with unit_of_work(factory) as db:
        await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEED_LOCK_KEY})
        business, business_created = await _business(db)
        users, users_created, password_set = await _users(db, business.id, password, reset_password)
        created = await _create_leads(db, business.id, users, pool, specs, now or datetime.now(UTC))
        counts = await db.execute(
            select(LeadStatus.key, func.count(Lead.id))
            .join(Lead, Lead.status_id == LeadStatus.id, isouter=True)
            .where(LeadStatus.business_id == business.id)
            .group_by(LeadStatus.key)
        )
        statuses = {key: count for key, count in counts}
        return SeedResult(
            business_id=business.id,
            business_created=business_created,
            emails=[email for _, email, _ in DEMO_USERS],
            users_created=users_created,
            password_set=password_set,
            leads_created=created,
            leads_total=sum(statuses.values()),
            statuses=statuses,
        )
