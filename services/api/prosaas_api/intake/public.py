"""POST /api/webhook/leads/{endpoint_id}: the public door for site forms, form builders and n8n.

No sign-in and no CSRF: the endpoint's secret (``X-Webhook-Secret``, compared as SHA-256 hashes in
constant time) is the credential, and the endpoint row decides the business — this is the one place
where the tenant comes from the URL rather than from a principal. Unknown, malformed, inactive and
wrong-secret posts all get the same 401, so the answer never tells whether an endpoint exists.

Order of checks: throttle (per endpoint id, before the secret, so guessing is throttled too) → secret
→ media type (415) → size (413, read with a cap) → parse and map (422) → write. A post with an
external id is idempotent through ``lead_intake_receipts``: the receipt is claimed with
``INSERT … ON CONFLICT DO NOTHING`` (a concurrent twin waits for the first to commit, then sees it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message

from prosaas_api.intake.mapping import InvalidSubmission, Submission, submission_from
from prosaas_api.intake.schemas import IntakeAccepted, field_errors
from prosaas_common.leads.writer import LeadWriter
from prosaas_common.logging import bind_context, get_logger
from prosaas_common.models import Business, LeadIntakeEndpoint, LeadIntakeReceipt
from prosaas_common.web import DbSession, resources_of

router = APIRouter(tags=["intake"])
log = get_logger("prosaas.intake")

SECRET_HEADER = "X-Webhook-Secret"
MAX_BODY_BYTES = 64 * 1024
MAX_FORM_FIELDS = 200
JSON_TYPES = frozenset({"application/json"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

# Fixed window per endpoint id: INCR, and set the TTL on the window's first post (atomic).
THROTTLE_KEY = "intake:posts:{}"
POSTS_PER_WINDOW = 120
WINDOW_S = 60
_COUNT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""
# Compared against when the endpoint is unknown, so that path hashes and compares like the others.
_NO_ENDPOINT = hashlib.sha256(b"no such intake endpoint").hexdigest()


def rejected() -> HTTPException:
    return HTTPException(status_code=401, detail="unknown intake endpoint or wrong X-Webhook-Secret")


def unprocessable(message: str) -> HTTPException:
    return field_errors([(None, message)])


async def throttle(redis: Redis, endpoint_id: uuid.UUID) -> None:
    """429 with Retry-After past POSTS_PER_WINDOW posts to one endpoint id in the window."""
    count, ttl = await redis.register_script(_COUNT)(keys=[THROTTLE_KEY.format(endpoint_id)], args=[WINDOW_S])
    if int(count) > POSTS_PER_WINDOW:
        retry_after = max(1, int(ttl))
        log.debug("intake.throttled", endpoint_id=str(endpoint_id), retry_after_s=retry_after)
        raise HTTPException(
            status_code=429,
            detail=f"more than {POSTS_PER_WINDOW} posts to this endpoint within {WINDOW_S} s",
            headers={"Retry-After": str(retry_after)},
        )


async def authenticate(
    db: AsyncSession, endpoint_id: uuid.UUID | None, presented: str
) -> tuple[LeadIntakeEndpoint, Business]:
    presented_hash = hashlib.sha256(presented.encode()).hexdigest()
    row = None
    if endpoint_id is not None:
        row = (
            await db.execute(
                select(LeadIntakeEndpoint, Business)
                .join(Business, Business.id == LeadIntakeEndpoint.business_id)
                .where(LeadIntakeEndpoint.id == endpoint_id)
            )
        ).first()
    expected = row[0].secret_hash if row is not None else _NO_ENDPOINT
    matches = hmac.compare_digest(presented_hash.encode(), expected.encode())
    if row is None or not presented or not matches or not row[0].is_active or not row[1].is_active:
        reason = (
            "unknown_endpoint"
            if row is None
            else "wrong_secret"
            if not presented or not matches
            else "inactive"
        )
        log.debug("intake.rejected", endpoint_id=str(endpoint_id), reason=reason)
        raise rejected()
    return row[0], row[1]


async def read_capped(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes MAX_BODY_BYTES (declared or streamed)."""
    too_large = HTTPException(status_code=413, detail=f"the body may be at most {MAX_BODY_BYTES} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    return bytes(body)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def parse_json(body: bytes) -> Mapping[str, Any]:
    try:
        data = json.loads(body, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise unprocessable(f"the body is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except (ValueError, RecursionError) as exc:
        raise unprocessable(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise unprocessable("the JSON body must be an object of fields")
    return data


def form_fields(form: FormData) -> dict[str, Any]:
    """Form fields as a dict; a repeated key (checkboxes, ``tags[]``) becomes a list; files are ignored."""
    data: dict[str, Any] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            continue
        if key not in data:
            data[key] = value
        elif isinstance(data[key], list):
            data[key].append(value)
        else:
            data[key] = [data[key], value]
    return data


async def parse_form(request: Request, body: bytes) -> Mapping[str, Any]:
    """Parse the already read (capped) body with Starlette's form parser."""

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(request.scope, replay).form(max_fields=MAX_FORM_FIELDS) as form:
            return form_fields(form)
    except StarletteHTTPException as exc:
        raise unprocessable(f"the form body is malformed: {exc.detail}") from None


async def read_post(request: Request) -> Mapping[str, Any]:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    is_json = media_type in JSON_TYPES or media_type.endswith("+json")
    if not is_json and media_type not in FORM_TYPES:
        raise HTTPException(
            status_code=415,
            detail="send application/json, application/x-www-form-urlencoded or multipart/form-data",
        )
    body = await read_capped(request)
    return parse_json(body) if is_json else await parse_form(request, body)


async def write_lead(
    db: AsyncSession, request: Request, endpoint: LeadIntakeEndpoint, submission: Submission
) -> IntakeAccepted:
    """Create or update the lead; with an external id, at most once per endpoint."""
    receipt = (LeadIntakeReceipt.endpoint_id == endpoint.id) & (
        LeadIntakeReceipt.external_id == submission.external_id
    )
    if submission.external_id is not None:
        claimed = await db.scalar(
            pg_insert(LeadIntakeReceipt)
            .values(endpoint_id=endpoint.id, external_id=submission.external_id, lead_id=None)
            .on_conflict_do_nothing(index_elements=["endpoint_id", "external_id"])
            .returning(LeadIntakeReceipt.external_id)
        )
        if claimed is None:
            first = await db.scalar(select(LeadIntakeReceipt.lead_id).where(receipt))
            return IntakeAccepted(lead_id=first, created=False, duplicate=True)
    writer = LeadWriter(
        db,
        endpoint.business_id,
        actor_user_id=None,
        via="webhook",
        pool=resources_of(request).job_pool,
    )
    lead, created = await writer.upsert(submission.values, status_id=endpoint.target_status_id)
    if submission.external_id is not None:
        await db.execute(update(LeadIntakeReceipt).where(receipt).values(lead_id=lead.id))
    # Last, so the endpoint row is locked only for the rest of the commit.
    await db.execute(
        update(LeadIntakeEndpoint)
        .where(LeadIntakeEndpoint.id == endpoint.id)
        .values(last_used_at=func.now(), updated_at=LeadIntakeEndpoint.updated_at)
        .execution_options(synchronize_session=False)
    )
    return IntakeAccepted(lead_id=lead.id, created=created, duplicate=False)


def _endpoint_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


_BODY_SCHEMA = {"type": "object", "additionalProperties": True}


@router.post(
    "/api/webhook/leads/{endpoint_id}",
    operation_id="intake_receive_lead",
    response_model=IntakeAccepted,
    status_code=201,
    responses={
        200: {"model": IntakeAccepted, "description": "an existing lead updated, or a duplicate"},
        401: {"description": "unknown, inactive or wrong secret (always the same answer)"},
        413: {"description": f"body over {MAX_BODY_BYTES} bytes"},
        415: {"description": "not JSON or a form"},
        429: {"description": "too many posts to this endpoint; see Retry-After"},
    },
    openapi_extra={
        "parameters": [
            {"name": SECRET_HEADER, "in": "header", "required": True, "schema": {"type": "string"}}
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _BODY_SCHEMA},
                "application/x-www-form-urlencoded": {"schema": _BODY_SCHEMA},
                "multipart/form-data": {"schema": _BODY_SCHEMA},
            },
        },
    },
)
async def receive_lead(
    endpoint_id: str, request: Request, response: Response, db: DbSession
) -> IntakeAccepted:
    """A lead from a form post: 201 when created, 200 when a lead with the phone was updated or the
    external id was seen before (``duplicate``)."""
    parsed = _endpoint_id(endpoint_id)
    if parsed is not None:
        await throttle(resources_of(request).redis, parsed)
    endpoint, business = await authenticate(db, parsed, request.headers.get(SECRET_HEADER, ""))
    bind_context(business_id=business.id)
    data = await read_post(request)
    try:
        submission = submission_from(data, region=business.default_region, source=endpoint.source)
    except InvalidSubmission as exc:
        log.debug("intake.invalid", endpoint_id=endpoint_id, errors=len(exc.errors))
        raise field_errors(exc.errors) from None
    result = await write_lead(db, request, endpoint, submission)
    response.status_code = 201 if result.created else 200
    log.debug(
        "intake.accepted",
        endpoint_id=str(endpoint.id),
        lead_id=result.lead_id,
        created=result.created,
        duplicate=result.duplicate,
    )
    return result
