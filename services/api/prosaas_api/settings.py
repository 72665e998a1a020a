"""Settings of the api service: the shared ones, where it listens, and sign-in."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, model_validator

from prosaas_common.settings import (
    AppEnv,
    CommonSettings,
    is_weak_secret,
)

DEV_AUTH_SECRET = "dev-auth-secret-change-me-0123456789"
# HS256 wants a key of at least 32 bytes (RFC 7518, section 3.2).
MIN_AUTH_SECRET_LENGTH = 32


class ApiSettings(CommonSettings):
    api_host: str = "0.0.0.0"
    api_port: Annotated[int, Field(gt=0, lt=65536)] = 5000
    # Proxies whose X-Forwarded-* headers are trusted (nginx in front); "*" only behind a private network.
    forwarded_allow_ips: str = "127.0.0.1"

    # Base URL of the tenant app, for links in e-mails (password reset).
    app_url: str = "http://localhost:5000"
    # Signs access tokens (HS256). Rotating it signs everyone out within ACCESS_TOKEN_TTL.
    auth_secret: SecretStr = SecretStr(DEV_AUTH_SECRET)
    access_token_ttl: Annotated[int, Field(ge=60, le=3600)] = 900
    refresh_token_ttl_days: Annotated[int, Field(ge=1, le=365)] = 30
    # Secure cookies need https; None means "on in production, off in development (plain http)".
    cookie_secure: bool | None = None
    # Failed sign-ins allowed per account and per client IP within the window, then 429.
    login_max_failures_per_account: Annotated[int, Field(ge=1, le=1000)] = 5
    login_max_failures_per_ip: Annotated[int, Field(ge=1, le=100_000)] = 30
    login_failure_window: Annotated[int, Field(ge=10, le=86_400)] = 900

    @model_validator(mode="after")
    def _auth_secret_in_production(self) -> ApiSettings:
        if self.app_env is AppEnv.PRODUCTION and (
            is_weak_secret(self.auth_secret, "auth_secret" in self.model_fields_set)
            or len(self.auth_secret.get_secret_value()) < MIN_AUTH_SECRET_LENGTH
        ):
            raise ValueError(
                "AUTH_SECRET: missing, a default value or too short; set a random secret of at least "
                f"{MIN_AUTH_SECRET_LENGTH} characters in production"
            )
        return self

    @property
    def secure_cookies(self) -> bool:
        return self.cookie_secure if self.cookie_secure is not None else self.app_env is AppEnv.PRODUCTION
