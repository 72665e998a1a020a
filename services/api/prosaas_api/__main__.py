"""Run the api service: `python -m prosaas_api` (listens on API_HOST:API_PORT, default 5000)."""

from __future__ import annotations

import uvicorn

from prosaas_api.app import create_app
from prosaas_api.settings import ApiSettings
from prosaas_common.logging import configure_from_settings
from prosaas_common.settings import load_settings


def main() -> None:
    settings = load_settings(ApiSettings, "prosaas-api")
    configure_from_settings(settings, "api")
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
