"""What the api, the worker and the calls service share about outbound calls.

An outbound ``calls`` row exists before Twilio knows the call (the api or a bulk run writes it, the
worker places it), so until Twilio answers with a call sid its ``call_sid`` is a placeholder
``pending:{random}`` (the column is unique and required). The worker swaps in the real sid; the
``outbound_call`` webhook finds the row by the ``call_id`` in its URL and swaps it in too if Twilio was
faster than the worker's commit.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.models import BusinessSettings

PENDING_PREFIX = "pending:"
# A lead with this tag is never called by a bulk run (and a single call to it is refused).
DO_NOT_CALL_TAG = "do-not-call"
DEFAULT_MAX_OUTBOUND_CALLS = 3  # business_settings.max_outbound_calls when the row is missing
OUTBOUND_CALL_PATH = "/webhook/outbound_call"
CALL_STATUS_PATH = "/webhook/call_status"


def placeholder_sid() -> str:
    return f"{PENDING_PREFIX}{secrets.token_hex(16)}"


def is_placeholder(call_sid: str) -> bool:
    return call_sid.startswith(PENDING_PREFIX)


def manual_dedup_key(business_id: int, key: str) -> str:
    return f"manual:{business_id}:{key}"


def run_dedup_key(run_id: int, lead_id: int) -> str:
    return f"run:{run_id}:lead:{lead_id}"


def place_job_id(call_id: int) -> str:
    return f"call-place:{call_id}"


def run_job_id(run_id: int, seq: int) -> str:
    """The arq job id of step ``seq`` of a run: each wait for a free slot starts the next step, so one
    run has one chain of jobs and a repeated enqueue of the current step is dropped by arq."""
    return f"outbound-run:{run_id}:{seq}"


async def outbound_limit(db: AsyncSession, business_id: int) -> int:
    limit = await db.scalar(
        select(BusinessSettings.max_outbound_calls).where(BusinessSettings.business_id == business_id)
    )
    return int(limit) if limit is not None else DEFAULT_MAX_OUTBOUND_CALLS
