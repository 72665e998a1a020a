"""Settings of the calls service (the shared ones plus where it listens)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator

from prosaas_common.settings import CommonSettings


class CallsSettings(CommonSettings):
    calls_host: str = "0.0.0.0"
    calls_port: Annotated[int, Field(gt=0, lt=65536)] = 5050
    # Proxies whose X-Forwarded-* headers are trusted (nginx in front); "*" only behind a private network.
    forwarded_allow_ips: str = "127.0.0.1"
    # A call's capacity slot lives this long unless its stream refreshes it (every third of it): the
    # longest a killed calls process can hold slots it no longer serves.
    call_slot_ttl_s: Annotated[float, Field(ge=0.5, le=3600)] = 60.0
    # OpenAI Realtime, the voice model of calls. Unset key: no OpenAI provider. The URL lets tests use a
    # local server speaking the same protocol.
    openai_api_key: SecretStr | None = None
    openai_realtime_url: str = "wss://api.openai.com/v1/realtime"
    openai_realtime_model: str = "gpt-realtime"

    @field_validator("openai_api_key", mode="before")
    @classmethod
    def _empty_key_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("openai_realtime_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not value.startswith(("wss://", "ws://")):
            raise ValueError("must be a wss:// or ws:// URL")
        return value.strip()
