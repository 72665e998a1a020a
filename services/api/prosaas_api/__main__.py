"""Run the api service: `python -m prosaas_api` (listens on API_HOST:API_PORT, default 5000)."""

from __future__ import annotations

from prosaas_api.app import create_app
from prosaas_api.settings import ApiSettings
from prosaas_common.logging import configure_from_settings
from prosaas_common.settings import load_settings
from prosaas_common.web import serve


def main() -> None:
    settings = load_settings(ApiSettings, "prosaas-api")
    configure_from_settings(settings, "api")
    serve(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


if __name__ == "__main__":
    main()
