"""/api/jobs/{id}: progress of a background job (import, bulk change) of the caller's business."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.lead_io.schemas import JobOut
from prosaas_api.tenancy import TenantRepository, not_found
from prosaas_common.models import BackgroundJob
from prosaas_common.web import DbSession

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
Reader = Annotated[Principal, Depends(require(Permission.LEADS_READ))]
SHOWN_ERRORS = 100


class JobRepository(TenantRepository[BackgroundJob]):
    model = BackgroundJob
    label = "job"

    async def find(self, job_id: uuid.UUID) -> BackgroundJob:
        job = await self.db.scalar(self.query().where(BackgroundJob.id == job_id))
        if job is None:
            raise not_found(self.label)
        return job


def job_out(job: BackgroundJob) -> JobOut:
    if job.total > 0:
        progress = min(1.0, job.processed / job.total)
    else:
        progress = 1.0 if job.state == "succeeded" else 0.0
    return JobOut(
        id=job.id,
        kind=job.kind,
        state=job.state,
        total=job.total,
        processed=job.processed,
        succeeded=job.succeeded,
        failed=job.failed,
        progress=round(progress, 4),
        errors=list(job.errors or [])[:SHOWN_ERRORS],
        result={key: value for key, value in (job.result or {}).items() if key != "last_id"},
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


@router.get(
    "/{job_id}",
    operation_id="jobs_get",
    response_model=JobOut,
    responses={404: {"description": "no such job in this business"}},
)
async def get_job(job_id: uuid.UUID, principal: Reader, db: DbSession) -> JobOut:
    """State and progress of a job; poll it until ``state`` is ``succeeded`` or ``failed``."""
    return job_out(await JobRepository(db, principal).find(job_id))
