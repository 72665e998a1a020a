"""Dead letters: a job that failed for good (an error, or its last try asked for another) is recorded
in ``dead_letters`` with its name, arguments, queue, tries and error, in a transaction of its own.

``python -m prosaas_worker dead-letters`` lists the latest; ``python -m prosaas_worker rerun ID``
enqueues the job again with the same arguments on its queue (job id ``rerun:{id}:{random}``) and stamps
``rerun_at``. Jobs are idempotent (dedup keys in Postgres), so a rerun never repeats an effect that
already happened.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select

from prosaas_common.db import create_engine, create_session_factory, unit_of_work
from prosaas_common.jobs import Queue, enqueue
from prosaas_common.logging import get_logger
from prosaas_common.models import DeadLetter
from prosaas_common.redis import create_arq_pool
from prosaas_worker.context import RESOURCES_KEY, JobContext, WorkerResources, job_queue
from prosaas_worker.settings import SERVICE, WorkerConfig

log = get_logger("prosaas.worker.dead_letters")


def _jsonable(value: Any) -> Any:
    """Arguments as JSON (anything else as its repr, so recording never fails on a type)."""
    return json.loads(json.dumps(value, default=repr))


async def record_dead_letter(
    ctx: JobContext, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], tries: int, error: str
) -> None:
    resources = ctx.get(RESOURCES_KEY)
    if not isinstance(resources, WorkerResources):
        return
    queue = job_queue(ctx)
    try:
        async with unit_of_work(resources.session_factory) as db:
            db.add(
                DeadLetter(
                    job_name=name,
                    job_id=str(ctx.get("job_id") or "") or None,
                    queue=queue.short_name if queue else None,
                    args=_jsonable(list(args)),
                    kwargs=_jsonable(kwargs),
                    tries=tries,
                    error=error[:2000],
                )
            )
    except Exception as exc:  # the failure itself is already logged at ERROR
        log.warning("dead_letter.not_recorded", job=name, error=f"{type(exc).__name__}: {exc}")


async def list_dead_letters(settings: WorkerConfig, limit: int) -> list[DeadLetter]:
    engine = create_engine(settings, f"{SERVICE}-cli")
    try:
        async with unit_of_work(create_session_factory(engine)) as db:
            rows = await db.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit))
            return list(rows)
    finally:
        await engine.dispose()


async def rerun(settings: WorkerConfig, dead_letter_id: int) -> str | None:
    """Enqueue the dead job again; returns the new job id (None when the id is unknown)."""
    engine = create_engine(settings, f"{SERVICE}-cli")
    pool = await create_arq_pool(settings.redis_url)
    try:
        async with unit_of_work(create_session_factory(engine)) as db:
            row = await db.scalar(select(DeadLetter).where(DeadLetter.id == dead_letter_id).with_for_update())
            if row is None:
                return None
            job_id = f"rerun:{row.id}:{uuid.uuid4().hex[:8]}"
            queue = Queue.from_name(row.queue) if row.queue else Queue.DEFAULT
            await enqueue(pool, row.job_name, *row.args, queue=queue, job_id=job_id, **row.kwargs)
            row.rerun_at = func.now()
            log.info("dead_letter.rerun", dead_letter_id=row.id, job=row.job_name, new_job_id=job_id)
            return job_id
    finally:
        await pool.aclose()
        await engine.dispose()
