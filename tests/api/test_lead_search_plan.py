"""Lead search and first pages use indexes, proven by the planner on 20,000 leads: the trigram GIN
index for free text and phone digits, the (business, created_at, id) index for keyset pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Select, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prosaas_api.leads.service import encode_cursor, keyset_page
from prosaas_common.db import create_session_factory, unit_of_work
from prosaas_common.leads.filters import LeadFilter
from prosaas_common.models import Business, Lead
from prosaas_common.provision import provision_business

LEADS = 20_000


@pytest.fixture
async def crowded(db_engine: AsyncEngine) -> AsyncIterator[tuple[AsyncConnection, int]]:
    """Two businesses of 20,000 leads each, analysed."""
    async with unit_of_work(create_session_factory(db_engine)) as db:
        businesses = [Business(name="Busy"), Business(name="Other")]
        db.add_all(businesses)
        await db.flush()
        for business in businesses:
            await provision_business(db, business)
        ids = [b.id for b in businesses]
    async with db_engine.begin() as conn:
        for business_id in ids:
            await conn.execute(
                text(
                    """
                    INSERT INTO leads
                        (business_id, status_id, rank, first_name, last_name, phone, email, created_at)
                    SELECT :b, (SELECT id FROM lead_statuses WHERE business_id = :b AND is_default), -n,
                           'First' || n, 'Last' || (n % 997), '+1415' || (2000000 + n),
                           'person' || n || '@example.com', now() - n * interval '1 minute'
                    FROM generate_series(1, :count) AS n
                    """
                ),
                {"b": business_id, "count": LEADS},
            )
        await conn.execute(text("ANALYZE leads"))
    async with db_engine.connect() as conn:
        yield conn, ids[0]


async def plan(conn: AsyncConnection, query: Select[Lead]) -> str:
    sql = query.compile(dialect=asyncpg_dialect(), compile_kwargs={"literal_binds": True})  # type: ignore[no-untyped-call]
    rows = await conn.execute(text(f"EXPLAIN {sql}"))
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize("q", ["first12345", "person1234@", "(415) 201-2345", "2012345"])
async def test_search_uses_the_trigram_index(crowded: tuple[AsyncConnection, int], q: str) -> None:
    conn, business_id = crowded
    query = keyset_page(LeadFilter(q=q).apply(business_id), "-created_at", None, 50)
    found = await plan(conn, query)
    assert "ix_leads_search_trgm" in found, found
    assert "Seq Scan on leads" not in found, found


async def test_first_page_and_later_pages_use_the_keyset_index(crowded: tuple[AsyncConnection, int]) -> None:
    conn, business_id = crowded
    first = await plan(conn, keyset_page(LeadFilter().apply(business_id), "-created_at", None, 50))
    assert "ix_leads_business_id_created_at_id" in first, first
    assert "Sort" not in first, first
    lead = Lead(id=10_000)
    lead.created_at = await conn.scalar(text("SELECT created_at FROM leads WHERE id = 10000"))
    later = await plan(
        conn,
        keyset_page(LeadFilter().apply(business_id), "-created_at", encode_cursor("-created_at", lead), 50),
    )
    assert "ix_leads_business_id_created_at_id" in later, later
    assert "Seq Scan" not in later, later


async def test_a_whole_phone_number_uses_the_phone_index(crowded: tuple[AsyncConnection, int]) -> None:
    conn, business_id = crowded
    whole_number = LeadFilter(q="(415) 201-2345", region="US")
    query = keyset_page(whole_number.apply(business_id), "-created_at", None, 50)
    found = await plan(conn, query)
    assert "uq_leads_business_id_phone" in found, found
    rows = await conn.execute(text("SELECT count(*) FROM leads WHERE phone = '+14152012345'"))
    assert rows.scalar() == 2  # one per business; the plan above reads only this business's
