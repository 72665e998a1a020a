"""/api/leads/imports: upload a CSV/XLSX file of leads, preview it with a column mapping, start the
import (a background job on the ``low`` queue; progress at ``GET /api/jobs/{id}``).

Parsing and row validation are :mod:`prosaas_common.leads.importing`, shared with the worker, so the
preview judges rows exactly as the import will.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from prosaas_api import audit
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.errors import field_error
from prosaas_api.lead_io.jobs import JobRepository, job_out
from prosaas_api.lead_io.schemas import (
    ImportOut,
    JobOut,
    PreviewOut,
    PreviewRequest,
    PreviewRow,
    RowErrorOut,
    StartRequest,
)
from prosaas_api.leads.query import StatusRepository
from prosaas_api.tenancy import TenantRepository, not_found, tenant_of
from prosaas_common.jobs import JobName, Queue, enqueue_after_commit
from prosaas_common.leads.importing import (
    MAX_BYTES,
    MAX_ROWS,
    PREVIEW_ROWS,
    ImportFileError,
    MappingError,
    StatusLookup,
    check_mapping,
    guess_mapping,
    parse_file,
    row_values,
)
from prosaas_common.models import BackgroundJob, Business, LeadImport
from prosaas_common.web import DbSession, resources_of

router = APIRouter(prefix="/api/leads/imports", tags=["leads"])
Importer = Annotated[Principal, Depends(require(Permission.LEADS_DELETE))]

IMPORT_JOB = JobName.LEADS_IMPORT
IMPORT_KIND = "leads.import"
UPLOAD_PREVIEW_ROWS = 10


def import_job_id(job_id: uuid.UUID) -> str:
    return f"leads-import:{job_id}"


class ImportRepository(TenantRepository[LeadImport]):
    model = LeadImport
    label = "import"

    async def find(
        self, import_id: uuid.UUID, *, with_content: bool = True, for_update: bool = False
    ) -> LeadImport:
        statement = self.query().where(LeadImport.id == import_id)
        if not with_content:
            statement = statement.options(defer(LeadImport.content))
        if for_update:
            statement = statement.with_for_update()
        upload = await self.db.scalar(statement)
        if upload is None:
            raise not_found(self.label)
        return upload


async def status_lookup(db: AsyncSession, principal: Principal) -> StatusLookup:
    statuses = (await db.scalars(StatusRepository(db, principal).query())).all()
    return StatusLookup((status.id, status.key, status.name) for status in statuses)


async def business_region(db: AsyncSession, principal: Principal) -> str:
    business = await db.get(Business, tenant_of(principal))
    return business.default_region if business is not None else "US"


def checked_mapping(mapping: dict[str, str], columns: list[str]) -> dict[str, str]:
    try:
        return check_mapping(mapping, columns)
    except MappingError as exc:
        [(column, message), *_] = exc.problems.items()
        raise field_error(("mapping", column), message) from None


@router.post(
    "",
    operation_id="leads_import_upload",
    status_code=201,
    response_model=ImportOut,
    responses={413: {"description": "larger than 10 MiB"}, 422: {"description": "not a readable file"}},
)
async def upload_import(
    file: Annotated[UploadFile, File(description="CSV (UTF-8; , ; or tab) or XLSX, ≤ 10 MiB")],
    principal: Importer,
    db: DbSession,
) -> ImportOut:
    """Store the file and answer its columns, row count, the guessed mapping and the first rows."""
    content = await file.read(MAX_BYTES + 1)
    if len(content) > MAX_BYTES:
        raise HTTPException(status_code=413, detail=f"the file is larger than {MAX_BYTES // 2**20} MiB")
    name = (file.filename or "").replace("\x00", "").replace("\\", "/").rsplit("/", 1)[-1]
    filename = name.strip()[:255] or "leads"
    try:
        parsed = await asyncio.to_thread(parse_file, content, filename, max_rows=MAX_ROWS)
    except ImportFileError as exc:
        raise field_error("file", str(exc)) from None
    if not parsed.rows:
        raise field_error("file", "the file has a header but no rows")
    upload = await ImportRepository(db, principal).add(
        LeadImport(
            filename=filename,
            file_format=parsed.file_format,
            content=content,
            columns=parsed.columns,
            row_count=len(parsed.rows),
            mapping=guess_mapping(parsed.columns),
            created_by_user_id=principal.user_id,
        )
    )
    await db.refresh(upload, ["created_at"])
    await audit.record(
        db,
        principal,
        "leads.import_uploaded",
        "lead_import",
        str(upload.id),
        {"filename": filename, "rows": upload.row_count},
    )
    return ImportOut(
        id=upload.id,
        filename=upload.filename,
        file_format=upload.file_format,
        columns=upload.columns,
        row_count=upload.row_count,
        mapping=upload.mapping,
        preview=parsed.preview(UPLOAD_PREVIEW_ROWS),
        created_at=upload.created_at,
    )


@router.post("/{import_id}/preview", operation_id="leads_import_preview", response_model=PreviewOut)
async def preview_import(
    import_id: uuid.UUID, principal: Importer, db: DbSession, body: PreviewRequest | None = None
) -> PreviewOut:
    """Dry run of the first 50 rows with ``mapping`` (default: the guess): normalised values and errors."""
    upload = await ImportRepository(db, principal).find(import_id)
    mapping = checked_mapping(
        body.mapping if body is not None and body.mapping is not None else upload.mapping, upload.columns
    )
    try:
        parsed = await asyncio.to_thread(parse_file, upload.content, upload.filename, first=PREVIEW_ROWS)
    except ImportFileError as exc:  # stored files were readable; kept for safety
        raise field_error("import_id", str(exc), location="path") from None
    statuses = await status_lookup(db, principal)
    region = await business_region(db, principal)
    rows: list[PreviewRow] = []
    for row in parsed.rows:
        result = row_values(row, parsed.columns, mapping, region=region, statuses=statuses)
        rows.append(
            PreviewRow(
                row=result.row,
                values=result.values,
                status_id=result.status_id,
                errors=[RowErrorOut(**error.as_dict()) for error in result.errors],
            )
        )
    valid = sum(1 for row in rows if not row.errors)
    return PreviewOut(mapping=mapping, rows=rows, valid=valid, invalid=len(rows) - valid)


@router.post(
    "/{import_id}/start",
    operation_id="leads_import_start",
    status_code=202,
    response_model=JobOut,
    responses={409: {"description": "the file was already imported"}},
)
async def start_import(
    import_id: uuid.UUID,
    principal: Importer,
    request: Request,
    db: DbSession,
    body: StartRequest | None = None,
) -> JobOut:
    """Import every row in the background (``dry_run``: validate only); poll ``GET /api/jobs/{id}``."""
    body = body or StartRequest()
    upload = await ImportRepository(db, principal).find(import_id, with_content=False, for_update=True)
    mapping = checked_mapping(body.mapping if body.mapping is not None else upload.mapping, upload.columns)
    if upload.job_id is not None:
        previous = await JobRepository(db, principal).find(upload.job_id)
        if not (previous.params or {}).get("dry_run"):
            raise HTTPException(
                status_code=409,
                detail={
                    "message": "this file was already imported; upload it again",
                    "job_id": str(previous.id),
                },
            )
    if body.default_status_id is not None:
        try:
            await StatusRepository(db, principal).get(body.default_status_id)
        except HTTPException:
            raise field_error("default_status_id", "no such status in this business") from None
    job = await JobRepository(db, principal).add(
        BackgroundJob(
            kind=IMPORT_KIND,
            params={
                "import_id": str(upload.id),
                "mapping": mapping,
                "dry_run": body.dry_run,
                "default_status_id": body.default_status_id,
            },
            total=upload.row_count,
            created_by_user_id=principal.user_id,
        )
    )
    await db.refresh(job, ["created_at"])
    upload.job_id = job.id
    upload.mapping = mapping
    await audit.record(
        db,
        principal,
        "leads.import_started",
        "lead_import",
        str(upload.id),
        {"job_id": str(job.id), "dry_run": body.dry_run, "rows": upload.row_count},
    )
    enqueue_after_commit(
        db,
        resources_of(request).job_pool,
        IMPORT_JOB,
        str(job.id),
        queue=Queue.LOW,
        job_id=import_job_id(job.id),
    )
    return job_out(job)
