"""Environment-driven settings shared by every service.

Each service subclasses :class:`CommonSettings` and loads it with :func:`load_settings`, which turns a
validation failure into one line per bad variable and exits, so a misconfigured container says exactly
what is wrong instead of printing a traceback.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_INTERNAL_SECRET = "dev-internal-secret-change-me"
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/prosaas"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_TWILIO_API_BASE_URL = "https://api.twilio.com"
# Values that are never accepted as a secret in production (lower-cased comparison).
KNOWN_DEFAULT_SECRETS = frozenset(
    {DEV_INTERNAL_SECRET, "changeme", "change-me", "secret", "password", "dev", "test", "default", "prosaas"}
)
MIN_PRODUCTION_SECRET_LENGTH = 16

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class ConfigError(Exception):
    """Settings could not be loaded; ``lines`` holds one message per bad variable."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


class CommonSettings(BaseSettings):
    """Variables every ProSaaS process reads. Names are the environment variable names, upper-cased."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", validate_default=True)

    app_env: AppEnv = AppEnv.DEVELOPMENT
    database_url: str = DEFAULT_DATABASE_URL
    database_url_direct: str | None = None
    redis_url: str = DEFAULT_REDIS_URL
    log_level: LogLevel = "INFO"
    log_format: LogFormat | None = None
    internal_secret: SecretStr = SecretStr(DEV_INTERNAL_SECRET)
    metrics_token: SecretStr | None = None
    public_host: str = "localhost"
    max_concurrent_calls: Annotated[int, Field(gt=0, le=100_000)] = 50
    git_sha: str = "unknown"
    build_id: str = "dev"
    db_pool_size: Annotated[int, Field(gt=0, le=200)] = 10
    db_max_overflow: Annotated[int, Field(ge=0, le=200)] = 10
    db_pool_timeout: Annotated[float, Field(gt=0, le=120)] = 10.0
    readiness_timeout: Annotated[float, Field(gt=0, le=2.0)] = 2.0
    readiness_cache_seconds: Annotated[float, Field(ge=0, le=30)] = 1.0
    migration_lock_timeout: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # Twilio (platform account): the worker sends SMS through its REST API, the calls service checks
    # the signature of its webhooks with the auth token. The base URL lets tests use a local server.
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_api_base_url: str = DEFAULT_TWILIO_API_BASE_URL
    # Call recordings (prosaas_common.storage): the worker stores them, the api serves them. "local" keeps
    # files under RECORDINGS_DIR (relative to the working directory unless absolute; the api and the
    # worker must see the same directory), "s3" puts them in S3_BUCKET of an S3-compatible store.
    # Credentials left unset use botocore's usual chain (environment, instance role).
    recordings_storage: Literal["local", "s3"] = "local"
    recordings_dir: str = "var/recordings"
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    # After storing a recording, delete it at Twilio (it stops costing storage there).
    recordings_delete_from_twilio: bool = False

    @field_validator(
        "s3_endpoint_url", "s3_bucket", "s3_access_key_id", "s3_secret_access_key", mode="before"
    )
    @classmethod
    def _empty_s3_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("recordings_storage", mode="before")
    @classmethod
    def _lower_storage(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _s3_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.strip().rstrip("/") if value else None

    @field_validator("recordings_dir")
    @classmethod
    def _recordings_dir(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a directory")
        return value.strip()

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> CommonSettings:
        if self.recordings_storage == "s3" and not self.s3_bucket:
            raise ValueError("S3_BUCKET: must be set when RECORDINGS_STORAGE=s3")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY: set both or neither")
        return self

    @field_validator(
        "database_url_direct",
        "metrics_token",
        "log_format",
        "twilio_account_sid",
        "twilio_auth_token",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """Compose passes an unset optional variable as "" (``${METRICS_TOKEN:-}``): treat it as unset."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("app_env", "log_format", mode="before")
    @classmethod
    def _lower_enum(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url", "database_url_direct")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("postgresql://", "postgresql+asyncpg://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("twilio_api_base_url")
    @classmethod
    def _http_base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.strip().rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @model_validator(mode="after")
    def _production_rules(self) -> CommonSettings:
        if self.app_env is not AppEnv.PRODUCTION:
            return self
        problems = []
        for name in ("database_url", "redis_url"):
            if name not in self.model_fields_set:
                problems.append(f"{name.upper()}: must be set explicitly in production")
        if is_weak_secret(self.internal_secret, "internal_secret" in self.model_fields_set):
            problems.append(
                "INTERNAL_SECRET: missing or a default value; set a random secret of at least "
                f"{MIN_PRODUCTION_SECRET_LENGTH} characters in production"
            )
        if self.metrics_token is not None and is_weak_secret(self.metrics_token, True):
            problems.append(
                f"METRICS_TOKEN: a default or short value; use at least {MIN_PRODUCTION_SECRET_LENGTH} "
                "random characters (or unset it to use INTERNAL_SECRET)"
            )
        if problems:
            raise ValueError(" | ".join(problems))
        return self

    # Derived values -------------------------------------------------------------------------------
    @property
    def effective_log_format(self) -> LogFormat:
        if self.log_format is not None:
            return self.log_format
        return LogFormat.JSON if self.app_env is AppEnv.PRODUCTION else LogFormat.CONSOLE

    @property
    def async_database_url(self) -> str:
        return to_asyncpg_url(self.database_url)

    @property
    def migration_database_url(self) -> str:
        return to_asyncpg_url(self.database_url_direct or self.database_url)

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    def metrics_tokens(self) -> list[str]:
        """Tokens accepted by the metrics endpoints: METRICS_TOKEN if set, and INTERNAL_SECRET."""
        tokens = [self.internal_secret.get_secret_value()]
        if self.metrics_token is not None:
            tokens.insert(0, self.metrics_token.get_secret_value())
        return [t for t in tokens if t]


def is_weak_secret(secret: SecretStr, explicitly_set: bool) -> bool:
    value = secret.get_secret_value()
    return (
        not explicitly_set
        or len(value) < MIN_PRODUCTION_SECRET_LENGTH
        or value.strip().lower() in KNOWN_DEFAULT_SECRETS
    )


def to_asyncpg_url(url: str) -> str:
    """Accept the plain ``postgresql://`` form devops paste from a provider and use the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


SettingsT = TypeVar("SettingsT", bound=CommonSettings)


def describe_validation_error(error: ValidationError) -> list[str]:
    """One human line per failing variable, naming it as it is spelled in the environment."""
    lines = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        if loc:
            shown = _shown_input(item.get("input"), loc)
            lines.append(f"{loc.upper()}={shown}: {message}")
        else:
            lines.extend(part.strip() for part in message.split(" | "))
    return lines


def _shown_input(value: Any, loc: str) -> str:
    if any(word in loc.lower() for word in ("secret", "token", "password", "url")):
        return "<hidden>"
    return repr(value)


def build_settings(cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build settings or raise :class:`ConfigError` with one line per bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def load_settings(cls: type[SettingsT], service: str) -> SettingsT:
    """Load settings for a process entry point; on a bad value print one line per problem and exit 2."""
    try:
        return build_settings(cls)
    except ConfigError as exc:
        for line in exc.lines:
            print(f"{service}: configuration error: {line}", file=sys.stderr)
        raise SystemExit(2) from None
