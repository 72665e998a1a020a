"""Settings: defaults, one clear line per bad variable, and refusal of weak secrets in production."""

from __future__ import annotations

import pytest

from prosaas_common.settings import (
    DEV_INTERNAL_SECRET,
    AppEnv,
    CommonSettings,
    ConfigError,
    LogFormat,
    build_settings,
)
from tests.support import run_module, service_env

STRONG = "s3cr3t-0123456789-abcdef"
PROD_BASE = {
    "APP_ENV": "production",
    "DATABASE_URL": "postgresql://app@db.internal:5432/prosaas",
    "REDIS_URL": "redis://redis:6379/0",
    "INTERNAL_SECRET": STRONG,
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "APP_ENV",
        "DATABASE_URL",
        "DATABASE_URL_DIRECT",
        "REDIS_URL",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "INTERNAL_SECRET",
        "METRICS_TOKEN",
        "MAX_CONCURRENT_CALLS",
    ):
        monkeypatch.delenv(name, raising=False)


def settings_from(monkeypatch: pytest.MonkeyPatch, **env: str) -> CommonSettings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return build_settings(CommonSettings)


def config_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        settings_from(monkeypatch, **env)
    return caught.value.lines


def test_development_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch)
    assert settings.app_env is AppEnv.DEVELOPMENT
    assert settings.log_level == "INFO"
    assert settings.effective_log_format is LogFormat.CONSOLE
    assert settings.max_concurrent_calls == 50
    assert settings.async_database_url.startswith("postgresql+asyncpg://")


def test_direct_url_falls_back_to_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch, DATABASE_URL="postgresql://a@pooler:6432/x")
    assert settings.migration_database_url == "postgresql+asyncpg://a@pooler:6432/x"
    settings = settings_from(monkeypatch, DATABASE_URL_DIRECT="postgres://a@primary:5432/x")
    assert settings.migration_database_url == "postgresql+asyncpg://a@primary:5432/x"


def test_empty_optional_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch, DATABASE_URL_DIRECT="", METRICS_TOKEN="", LOG_FORMAT=" ")
    assert settings.database_url_direct is None
    assert settings.metrics_token is None
    assert settings.effective_log_format is LogFormat.CONSOLE


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_from(monkeypatch, LOG_LEVEL="debug").log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD'"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml'"),
        ({"APP_ENV": "staging"}, "APP_ENV='staging'"),
        ({"MAX_CONCURRENT_CALLS": "0"}, "MAX_CONCURRENT_CALLS='0'"),
        ({"MAX_CONCURRENT_CALLS": "many"}, "MAX_CONCURRENT_CALLS='many'"),
        ({"REDIS_URL": "http://redis:6379"}, "REDIS_URL=<hidden>"),
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL=<hidden>"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    lines = config_error(monkeypatch, **env)
    assert len(lines) == 1
    assert lines[0].startswith(variable)


def test_production_refuses_missing_secret_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: v for k, v in PROD_BASE.items() if k != "INTERNAL_SECRET"}
    lines = config_error(monkeypatch, **env)
    assert any(line.startswith("INTERNAL_SECRET:") for line in lines)
    assert not any(STRONG in line for line in lines)


@pytest.mark.parametrize("weak", [DEV_INTERNAL_SECRET, "changeme", "short-secret"])
def test_production_refuses_default_or_short_secret(monkeypatch: pytest.MonkeyPatch, weak: str) -> None:
    lines = config_error(monkeypatch, **{**PROD_BASE, "INTERNAL_SECRET": weak})
    assert [line.split(":")[0] for line in lines] == ["INTERNAL_SECRET"]
    assert weak not in " ".join(lines)


def test_production_refuses_weak_metrics_token(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = config_error(monkeypatch, **{**PROD_BASE, "METRICS_TOKEN": "secret"})
    assert [line.split(":")[0] for line in lines] == ["METRICS_TOKEN"]


def test_production_needs_explicit_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = config_error(monkeypatch, APP_ENV="production", INTERNAL_SECRET=STRONG)
    assert sorted(line.split(":")[0] for line in lines) == ["DATABASE_URL", "REDIS_URL"]


def test_production_accepts_real_secrets_and_logs_json(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch, **PROD_BASE, METRICS_TOKEN="m" * 24)
    assert settings.effective_log_format is LogFormat.JSON
    assert settings.metrics_tokens() == ["m" * 24, STRONG]


@pytest.mark.parametrize("module", ["prosaas_api", "prosaas_calls"])
def test_process_refuses_to_start_with_one_clear_line(module: str) -> None:
    env = service_env({"LOG_LEVEL": "LOUD"})
    done = run_module(["-m", module], env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "configuration error: LOG_LEVEL='LOUD'" in lines[0]


def test_process_refuses_default_secret_in_production() -> None:
    env = service_env({**PROD_BASE, "INTERNAL_SECRET": DEV_INTERNAL_SECRET})
    done = run_module(["-m", "prosaas_api"], env)
    assert done.returncode == 2
    assert "INTERNAL_SECRET: missing or a default value" in done.stderr
    assert DEV_INTERNAL_SECRET not in done.stderr
