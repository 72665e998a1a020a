"""Leads in and out in bulk: CSV export, CSV/XLSX import, bulk changes, and background job progress.

:data:`router` must be included before the leads router: ``/api/leads/export.csv`` and
``/api/leads/bulk`` would otherwise be shadowed by ``/api/leads/{lead_id}``.
"""

from __future__ import annotations

from fastapi import APIRouter

from prosaas_api.lead_io import bulk, export, imports, jobs

router = APIRouter()
router.include_router(export.router)
router.include_router(imports.router)
router.include_router(bulk.router)
router.include_router(jobs.router)
