"""E-mail templates: every template renders a subject, a text and an HTML part; HTML is escaped, text is
not; unknown names and missing variables fail; the outbox helper stores both bodies and the business's
sender name, once per dedup key."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import jinja2
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.db import create_session_factory, unit_of_work
from prosaas_common.email_templates import (
    TEMPLATES,
    UnknownEmailTemplate,
    add_templated_email,
    clean_display_name,
    render_email,
    sender_name,
)
from prosaas_common.models import Business, BusinessSettings, OutboundEmail
from prosaas_common.provision import provision_business

EVIL = "Ada <script>alert('x')</script> & Co"
ESCAPED = "Ada &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co"
CONTEXTS: dict[str, dict[str, Any]] = {
    "password_reset": {"link": "https://app.example/reset-password#token=abc", "valid_minutes": 60},
    "invitation": {
        "business_name": EVIL,
        "role": "agent",
        "link": "https://app.example/reset-password#token=abc",
        "valid_days": 7,
    },
    "reminder": {
        "title": f"Reminder: call {EVIL}",
        "note": f"Call {EVIL}\nabout the quote",
        "due": "soon",
        "link": "/leads/7",
    },
    "notification": {"title": "Heads up", "body": f"{EVIL} needs you", "link": "/settings/webhooks"},
}


def test_every_template_has_its_three_files_in_the_package() -> None:
    """The files are package data (``importlib.resources``), so they ship in the wheel."""
    root = files("prosaas_common.email_templates") / "templates"
    assert root.joinpath("base.html").is_file()
    for name in TEMPLATES:
        for part in ("subject.txt", "body.txt", "body.html"):
            assert root.joinpath(name, part).is_file(), (name, part)
    assert set(CONTEXTS) == set(TEMPLATES)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_each_template_renders_html_escaped_and_text_raw(name: str) -> None:
    rendered = render_email(name, sender_name=EVIL, **CONTEXTS[name])
    assert rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.text.endswith("\n")
    assert not rendered.text.endswith("\n\n")
    assert f"Sent by {EVIL} with ProSaaS." in rendered.text  # text is not HTML: nothing escaped
    html = rendered.html
    assert html.startswith("<!DOCTYPE html>")  # the base layout
    assert f"Sent by {ESCAPED} with ProSaaS." in html
    assert "<script" not in html
    for external in ("<img", "<link", "src=", "url(", "<style"):
        assert external not in html, external  # inline styles only, nothing fetched
    assert 'style="' in html


def test_values_are_escaped_in_html_and_raw_in_text() -> None:
    rendered = render_email("reminder", **CONTEXTS["reminder"])
    assert rendered.subject == f"Reminder: call {EVIL}"
    assert rendered.text.startswith(f"Call {EVIL}\nabout the quote\n\nDue soon.\n\nLead: /leads/7\n")
    assert f"Call {ESCAPED}<br>\nabout the quote" in rendered.html
    assert f"<title>Reminder: call {ESCAPED}</title>" in rendered.html
    assert "/leads/7" in rendered.html
    assert 'href="/leads/7"' not in rendered.html  # an app path is no link in an e-mail
    assert "Sent by ProSaaS." in rendered.text  # no sender name: the platform signs


def test_absolute_links_become_buttons_with_escaped_urls() -> None:
    link = 'https://app.example/reset-password#token=a&b="c"'
    rendered = render_email("password_reset", link=link, valid_minutes=60)
    assert rendered.subject == "Reset your ProSaaS password"
    assert 'open this link within 60 minutes:\nhttps://app.example/reset-password#token=a&b="c"\n' in (
        rendered.text
    )
    assert 'href="https://app.example/reset-password#token=a&amp;b=&#34;c&#34;"' in rendered.html
    notice = render_email("notification", title="t", body="b", link="https://app.example/settings")
    assert 'href="https://app.example/settings"' in notice.html
    assert "href" not in render_email("notification", title="t", body="b", link=None).html


def test_subject_is_one_line_whatever_the_values() -> None:
    rendered = render_email(
        "notification", title="Line one\r\nBcc: victim@example.com\tx", body="b", link=None
    )
    assert rendered.subject == "Line one Bcc: victim@example.com x"
    assert len(render_email("notification", title="x" * 500, body="b", link=None).subject) == 300


def test_unknown_names_and_missing_variables_fail_loudly() -> None:
    with pytest.raises(UnknownEmailTemplate, match="no e-mail template named 'welcome'"):
        render_email("welcome", link="x")
    with pytest.raises(UnknownEmailTemplate):
        render_email("../base", link="x")
    with pytest.raises(jinja2.UndefinedError, match="valid_minutes"):
        render_email("password_reset", link="https://app.example/x")
    with pytest.raises(jinja2.UndefinedError, match="link"):
        render_email("notification", title="t", body="b")


def test_display_names_are_one_trimmed_line_of_at_most_200() -> None:
    assert clean_display_name("  Bright\r\n Smiles\x00 ") == "Bright Smiles"
    assert clean_display_name("\r\n \t") is None
    assert clean_display_name(None) is None
    assert clean_display_name("x" * 250) == "x" * 200


async def make_business(engine: AsyncEngine, name: str, from_name: str | None = None) -> int:
    async with unit_of_work(create_session_factory(engine)) as db:
        business = Business(name=name)
        db.add(business)
        await db.flush()
        await provision_business(db, business)
        await db.execute(
            update(BusinessSettings)
            .where(BusinessSettings.business_id == business.id)
            .values(email_from_name=from_name)
        )
        return business.id


async def test_sender_name_is_the_setting_else_the_business_name(db_engine: AsyncEngine) -> None:
    named = await make_business(db_engine, "Dental", "Bright Smiles\r\nBcc: victim@example.com")
    plain = await make_business(db_engine, "Plain Dental")
    blank = await make_business(db_engine, "Blank Dental", "   ")
    async with unit_of_work(create_session_factory(db_engine)) as db:
        bare = Business(name="No settings row")
        db.add(bare)
        await db.flush()
        bare_id = bare.id
    async with unit_of_work(create_session_factory(db_engine)) as db:
        assert await sender_name(db, named) == "Bright Smiles Bcc: victim@example.com"
        assert await sender_name(db, plain) == "Plain Dental"
        assert await sender_name(db, blank) == "Blank Dental"
        assert await sender_name(db, bare_id) == "No settings row"
        assert await sender_name(db, None) is None
        assert await sender_name(db, 10**12) is None


async def test_outbox_rows_carry_both_bodies_and_the_sender_once_per_dedup_key(
    db_engine: AsyncEngine,
) -> None:
    business_id = await make_business(db_engine, EVIL, "Bright Smiles")
    context = CONTEXTS["notification"]
    async with unit_of_work(create_session_factory(db_engine)) as db:
        first = await add_templated_email(
            db,
            business_id=business_id,
            to_address="owner@example.com",
            dedup_key="n:1",
            template="notification",
            context=context,
        )
        again = await add_templated_email(
            db,
            business_id=business_id,
            to_address="other@example.com",
            dedup_key="n:1",
            template="notification",
            context={**context, "title": "Changed"},
        )
        platform = await add_templated_email(
            db,
            business_id=None,
            to_address="staff@example.com",
            dedup_key="n:2",
            template="notification",
            context=context,
        )
    assert first is not None
    assert again is None
    assert platform is not None
    async with db_engine.connect() as conn:
        rows = {r.id: r for r in await conn.execute(select(OutboundEmail.__table__))}
    assert len(rows) == 2
    row = rows[first]
    assert (row.to_address, row.subject, row.from_name, row.status) == (
        "owner@example.com",
        "Heads up",
        "Bright Smiles",
        "pending",
    )
    assert f"{EVIL} needs you" in row.body_text
    assert f"{ESCAPED} needs you" in row.body_html
    assert "Sent by Bright Smiles with ProSaaS." in row.body_text
    assert rows[platform].from_name is None
    assert "Sent by ProSaaS." in rows[platform].body_text
