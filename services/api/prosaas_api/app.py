"""The api ASGI application."""

from __future__ import annotations

from fastapi import FastAPI

from prosaas_api.admin import router as admin_router
from prosaas_api.auth import router as auth_router
from prosaas_api.business import router as business_router
from prosaas_api.settings import ApiSettings
from prosaas_api.users import router as users_router
from prosaas_common.settings import load_settings
from prosaas_common.web import create_service_app


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or load_settings(ApiSettings, "prosaas-api")
    app = create_service_app(
        service="api",
        settings=settings,
        title="ProSaaS API",
        liveness_path="/api/health",
        docs_prefix="/api",
    )
    app.include_router(auth_router.router)
    app.include_router(admin_router.router)
    app.include_router(business_router.router)
    app.include_router(users_router.router)
    return app
