"""The ceiling for ``bench/leads_list.py``: the least an HTTP request that touches Postgres can cost here.

A bare FastAPI app with one route running ``SELECT 1`` through an asyncpg pool (as many connections as
the api's pool and overflow), served by the same uvicorn setup as the services (one process, no access
log). Whatever the api spends above this is its own work: auth, ORM, serialisation, logging.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.ceiling_app 8099
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request

from prosaas_common.web import serve

POOL_SIZE = 20  # the api's DB_POOL_SIZE + DB_MAX_OVERFLOW defaults


def create_app(database_url: str | None = None) -> FastAPI:
    url = (database_url or os.environ["DATABASE_URL"]).replace("postgresql+asyncpg://", "postgresql://", 1)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(url, min_size=2, max_size=POOL_SIZE)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/ceiling")
    async def ceiling(request: Request) -> dict[str, Any]:
        async with request.app.state.pool.acquire() as conn:
            return {"value": await conn.fetchval("SELECT 1")}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8099
    serve(create_app(), host="127.0.0.1", port=port, forwarded_allow_ips="127.0.0.1")


if __name__ == "__main__":
    main()
