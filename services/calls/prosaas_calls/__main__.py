"""Run the calls service: `python -m prosaas_calls` (listens on CALLS_HOST:CALLS_PORT, default 5050)."""

from __future__ import annotations

import uvicorn

from prosaas_calls.app import create_app
from prosaas_calls.settings import CallsSettings
from prosaas_common.logging import configure_from_settings
from prosaas_common.settings import load_settings


def main() -> None:
    settings = load_settings(CallsSettings, "prosaas-calls")
    configure_from_settings(settings, "calls")
    uvicorn.run(
        create_app(settings),
        host=settings.calls_host,
        port=settings.calls_port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
