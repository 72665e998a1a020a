"""deliver_email against a real SMTP server (aiosmtpd), real Postgres and Redis, through real arq workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from arq import Retry
from arq.connections import ArqRedis
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.db import create_session_factory, unit_of_work
from prosaas_common.email_templates import add_templated_email
from prosaas_common.jobs import Queue, email_job_id, enqueue
from prosaas_common.models import Business, BusinessSettings
from prosaas_common.models.email import OutboundEmail
from prosaas_common.provision import provision_business
from prosaas_common.settings import ConfigError, build_settings
from prosaas_worker.context import JobContext, WorkerResources
from prosaas_worker.email_transport import message_id
from prosaas_worker.jobs import ALL_JOBS
from prosaas_worker.registry import arq_functions
from prosaas_worker.settings import WorkerConfig, parse_smtp_url
from tests.support import closed_port
from tests.worker.conftest import LogCapture, MakeConfig, RunGroup
from tests.worker.smtp_server import SmtpServer, smtp_server

TO = "lead@example.com"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


async def add_email(engine: AsyncEngine, dedup_key: str = "reset:1", to: str = TO, **extra: Any) -> int:
    values = {"dedup_key": dedup_key, "to_address": to, "subject": "Reset", "body_text": "Hello,\nclick."}
    values.update(extra)
    async with engine.begin() as conn:
        return int(
            (
                await conn.execute(insert(OutboundEmail).values(**values).returning(OutboundEmail.id))
            ).scalar_one()
        )


async def row(engine: AsyncEngine, email_id: int) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(OutboundEmail.__table__).where(OutboundEmail.id == email_id))).one()


@pytest.fixture
async def direct(make_config: MakeConfig) -> AsyncIterator[Any]:
    """``await run(email_id, job_try=1, **config)``: the registered (instrumented) job, without arq."""
    [function] = [f for f in arq_functions(ALL_JOBS) if f.name == "email.deliver"]
    created: list[WorkerResources] = []

    async def run(email_id: int, job_try: int = 1, **overrides: Any) -> Any:
        resources = WorkerResources.create(make_config(**overrides))
        created.append(resources)
        ctx: JobContext = resources.job_context(Queue.DEFAULT, max_tries=8)
        ctx.update(job_id=email_job_id(email_id), job_try=job_try)
        return await function.coroutine(ctx, email_id)

    yield run
    for resources in created:
        await resources.dispose()


async def test_delivered_through_a_worker_then_idempotent(
    make_config: MakeConfig, run_group: RunGroup, pool: ArqRedis, db_engine: AsyncEngine, smtp: SmtpServer
) -> None:
    email_id = await add_email(db_engine)
    job = await enqueue(pool, "email.deliver", email_id, job_id=email_job_id(email_id))
    assert job is not None
    async with run_group(make_config(worker_queues="default", smtp_url=smtp.url)):
        assert await job.result(timeout=10, poll_delay=0.05) == "sent"
        # Same job id: arq drops it (result kept); another id for the same row: runs, sends nothing.
        assert await enqueue(pool, "email.deliver", email_id, job_id=email_job_id(email_id)) is None
        again = await enqueue(pool, "email.deliver", email_id, job_id=f"email:{email_id}:dup")
        assert again is not None
        assert await again.result(timeout=10, poll_delay=0.05) == "skipped"

    [received] = smtp.handler.messages()
    assert received.mail_from == "no-reply@localhost"
    assert received.rcpt_tos == [TO]
    message = received.message
    assert (message["To"], message["Subject"]) == (TO, "Reset")
    assert message["From"] == "ProSaaS <no-reply@localhost>"
    assert message["Message-ID"] == message_id("reset:1", "no-reply@localhost")
    assert message["Message-ID"].endswith("@localhost>")
    assert len(message["Message-ID"]) == 44
    assert message["Date"]
    assert message.get_content_type() == "text/plain"  # no HTML body: a single text part
    assert message.get_content().replace("\r\n", "\n") == "Hello,\nclick.\n"  # CRLF on the wire
    stored = await row(db_engine, email_id)
    assert (stored.status, stored.attempts, stored.last_error) == ("sent", 1, None)
    assert stored.sent_at is not None


async def test_running_again_or_for_a_missing_row_sends_nothing(
    direct: Any, db_engine: AsyncEngine, smtp: SmtpServer, debug_logs: LogCapture
) -> None:
    email_id = await add_email(db_engine)
    assert await direct(email_id, smtp_url=smtp.url) == "sent"
    assert await direct(email_id, job_try=2, smtp_url=smtp.url) == "skipped"
    assert await direct(email_id + 100, smtp_url=smtp.url) == "missing"
    assert len(smtp.handler.messages()) == 1
    assert (await row(db_engine, email_id)).attempts == 1
    [sent] = debug_logs.events("email.sent", email_id=email_id)
    assert sent["level"] == "debug"
    assert debug_logs.events("email.missing", email_id=email_id + 100)
    ours = [r for r in debug_logs.records() if str(r.get("logger", "")).startswith("prosaas")]
    assert ours
    assert "click" not in str(ours)


async def test_concurrent_duplicates_send_once(direct: Any, db_engine: AsyncEngine, smtp: SmtpServer) -> None:
    email_id = await add_email(db_engine)
    smtp.handler.data_delay_s = 0.3  # the first sender holds the row lock while the second waits
    results = await asyncio.gather(*(direct(email_id, smtp_url=smtp.url) for _ in range(2)))
    assert sorted(results) == ["sent", "skipped"]
    assert len(smtp.handler.messages()) == 1
    assert (await row(db_engine, email_id)).attempts == 1


async def test_permanent_refusal_fails_the_row_without_retry(
    make_config: MakeConfig,
    run_group: RunGroup,
    pool: ArqRedis,
    redis: Any,
    db_engine: AsyncEngine,
    smtp: SmtpServer,
    info_logs: LogCapture,
) -> None:
    smtp.handler.refuse["nobody@example.com"] = "550 5.1.1 no such mailbox"
    email_id = await add_email(db_engine, to="nobody@example.com")
    job = await enqueue(pool, "email.deliver", email_id, job_id=email_job_id(email_id))
    assert job is not None
    async with run_group(make_config(worker_queues="default", smtp_url=smtp.url)):
        assert await job.result(timeout=10, poll_delay=0.05) == "failed"
    assert not await redis.exists(f"arq:retry:{job.job_id}")
    assert await pool.zscore(Queue.DEFAULT.value, job.job_id) is None
    stored = await row(db_engine, email_id)
    assert (stored.status, stored.attempts, stored.sent_at) == ("failed", 1, None)
    assert "550" in stored.last_error
    assert "no such mailbox" in stored.last_error
    [rejected] = info_logs.events("email.rejected", email_id=email_id)
    assert (rejected["level"], rejected["code"]) == ("warning", 550)
    assert not [r for r in info_logs.records() if r["level"] == "error"]
    assert not info_logs.events("job.retrying")
    assert smtp.handler.messages() == []


async def test_unreachable_server_commits_the_attempt_and_retries_later(
    direct: Any, db_engine: AsyncEngine, debug_logs: LogCapture
) -> None:
    email_id = await add_email(db_engine)
    url = f"smtp://127.0.0.1:{closed_port()}"
    with pytest.raises(Retry) as first:
        await direct(email_id, job_try=1, smtp_url=url)
    assert first.value.defer_score == 30_000
    stored = await row(db_engine, email_id)
    assert (stored.status, stored.attempts) == ("pending", 1)
    assert stored.last_error.startswith("SMTPConnectError")

    with pytest.raises(Retry) as third:
        await direct(email_id, job_try=3, smtp_url=url)
    assert third.value.defer_score == 120_000
    assert (await row(db_engine, email_id)).attempts == 2
    retrying = debug_logs.events("job.retrying", job="email.deliver", job_id=email_job_id(email_id))
    assert [r["defer_s"] for r in retrying] == [30.0, 120.0]


# Templated e-mail: both parts, escaping, the business's sender name ------------------------------
EVIL = "Ada <script>alert(1)</script>"


async def templated_email(engine: AsyncEngine, business_name: str, from_name: str | None = None) -> int:
    """A ``notification`` e-mail written by the outbox helper for a new business."""
    async with unit_of_work(create_session_factory(engine)) as db:
        business = Business(name=business_name)
        db.add(business)
        await db.flush()
        await provision_business(db, business)
        settings = await db.get(BusinessSettings, business.id)
        assert settings is not None
        settings.email_from_name = from_name
        await db.flush()
        email_id = await add_templated_email(
            db,
            business_id=business.id,
            to_address=TO,
            dedup_key="notice:1",
            template="notification",
            context={"title": f"New lead {EVIL}", "body": f"{EVIL} called twice.", "link": None},
        )
    assert email_id is not None
    return email_id


def parts(message: Any) -> list[tuple[str, str]]:
    return [(part.get_content_type(), part.get_content()) for part in message.iter_parts()]


async def test_a_templated_email_arrives_as_text_then_html_from_the_business_name(
    direct: Any, db_engine: AsyncEngine, smtp: SmtpServer
) -> None:
    email_id = await templated_email(db_engine, f"{EVIL} Dental")
    assert await direct(email_id, smtp_url=smtp.url, smtp_from="Platform <mail@prosaas.example>") == "sent"
    [received] = smtp.handler.messages()
    message = received.message
    assert received.mail_from == "mail@prosaas.example"
    assert message.get_content_type() == "multipart/alternative"
    [(text_type, text), (html_type, html)] = parts(message)
    assert (text_type, html_type) == ("text/plain", "text/html")
    assert f"{EVIL} called twice." in text  # raw in text
    assert f"Sent by {EVIL} Dental with ProSaaS." in text
    assert "Ada &lt;script&gt;alert(1)&lt;/script&gt; called twice." in html  # escaped in HTML
    assert "<script" not in html
    assert message["Subject"] == f"New lead {EVIL}"
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (f"{EVIL} Dental", "mail@prosaas.example")


async def test_the_sender_name_setting_wins_and_non_ascii_survives(
    direct: Any, db_engine: AsyncEngine, smtp: SmtpServer
) -> None:
    email_id = await templated_email(db_engine, "Dental", "Zoë's Café, Smiles & Co")
    assert await direct(email_id, smtp_url=smtp.url) == "sent"
    [received] = smtp.handler.messages()
    [sender] = received.message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Zoë's Café, Smiles & Co", "no-reply@localhost")
    [(_, text), _html] = parts(received.message)
    assert "Sent by Zoë's Café, Smiles & Co with ProSaaS." in text


@pytest.mark.parametrize(
    "from_name",
    [
        "Evil\r\nBcc: victim@example.com",
        "Evil\nTo: victim@example.com\r\n\r\nbody",
        "CEO <ceo@bank.example>",
        "ceo@bank.example",
    ],
)
async def test_a_sender_name_cannot_inject_headers_or_change_the_address(
    direct: Any, db_engine: AsyncEngine, smtp: SmtpServer, from_name: str
) -> None:
    """Even a row written around the helpers (raw CR/LF in the name and the subject) sends one From with
    SMTP_FROM's address, the one recipient, and no extra header."""
    email_id = await add_email(
        db_engine, from_name=from_name, subject="Hi\r\nBcc: victim@example.com", body_html="<p>Hello</p>"
    )
    assert await direct(email_id, smtp_url=smtp.url) == "sent"
    [received] = smtp.handler.messages()
    message = received.message
    assert received.rcpt_tos == [TO]
    assert message.get_all("Bcc") is None
    assert message.get_all("To") == [TO]
    assert message["Subject"] == "Hi Bcc: victim@example.com"
    [from_header] = message.get_all("From") or []
    [sender] = from_header.addresses
    assert sender.addr_spec == "no-reply@localhost"
    assert sender.display_name == " ".join(from_name.split())
    assert "\n" not in sender.display_name


async def test_without_a_sender_name_smtp_from_names_the_sender(
    direct: Any, db_engine: AsyncEngine, smtp: SmtpServer
) -> None:
    email_id = await add_email(db_engine, body_html="<p>Hello</p>", from_name=None)
    assert await direct(email_id, smtp_url=smtp.url, smtp_from="no-reply@prosaas.example") == "sent"
    assert await add_email(db_engine, "reset:2", from_name="\r\n") > email_id
    assert await direct(email_id + 1, smtp_url=smtp.url) == "sent"
    first, second = (r.message["From"] for r in smtp.handler.messages())
    assert str(first) == "no-reply@prosaas.example"  # SMTP_FROM without a name: the bare address
    assert str(second) == "ProSaaS <no-reply@localhost>"  # a blank name: SMTP_FROM's own


# Settings ----------------------------------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMTP_URL", "SMTP_FROM", "SMTP_TIMEOUT", "APP_ENV"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:1025", ("127.0.0.1", 1025, None, None, False, False)),
        (
            "smtp://u%40x:p%3Aw@mail.example.com?starttls=true",
            ("mail.example.com", 587, "u@x", "p:w", False, True),
        ),
        ("smtps://u:p@mail.example.com", ("mail.example.com", 465, "u", "p", True, False)),
        ("smtp://mail.example.com", ("mail.example.com", 25, None, None, False, False)),
    ],
)
def test_smtp_url_forms(url: str, expected: tuple[Any, ...]) -> None:
    s = parse_smtp_url(url)
    assert (s.host, s.port, s.username, s.password, s.use_tls, s.start_tls) == expected


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://mail.example.com", "must be an smtp:// or smtps:// URL"),
        ("smtp://:25", "names no host"),
        ("smtp://h:25?starttls=maybe", "starttls must be true or false"),
        ("smtps://h?starttls=true", "smtps:// is already TLS"),
        ("smtp://h:25?tls=1", "unknown option(s) tls"),
    ],
)
def test_bad_smtp_url_is_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_settings(WorkerConfig, smtp_url=url)
    [line] = caught.value.lines
    assert line.startswith("SMTP_URL=<hidden>: ")
    assert message in line


@pytest.mark.usefixtures("clean_env")
def test_production_refuses_the_default_smtp_url() -> None:
    base = {
        "app_env": "production",
        "database_url": "postgresql://db/prosaas",
        "redis_url": "redis://redis:6379/0",
        "internal_secret": "x9" * 16,
    }
    for extra in ({}, {"smtp_url": "smtp://127.0.0.1:1025"}):
        with pytest.raises(ConfigError) as caught:
            build_settings(WorkerConfig, **base, **extra)
        assert caught.value.lines == [
            "SMTP_URL: must be set explicitly in production (the default points at a local test server); "
            "e.g. smtp://user:pass@smtp.example.com:587?starttls=true"
        ]
    config = build_settings(WorkerConfig, **base, smtp_url="smtps://u:p@smtp.example.com")
    assert config.smtp_server.use_tls
    assert config.smtp_timeout == 20.0
    with pytest.raises(ConfigError, match="SMTP_FROM"):
        build_settings(WorkerConfig, smtp_from="nobody")
