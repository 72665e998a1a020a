"""Settings of the calls service (the shared ones plus where it listens)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from prosaas_common.settings import CommonSettings


class CallsSettings(CommonSettings):
    calls_host: str = "0.0.0.0"
    calls_port: Annotated[int, Field(gt=0, lt=65536)] = 5050
    # Proxies whose X-Forwarded-* headers are trusted (nginx in front); "*" only behind a private network.
    forwarded_allow_ips: str = "127.0.0.1"
    # A call's capacity slot lives this long unless its stream refreshes it (every third of it): the
    # longest a killed calls process can hold slots it no longer serves.
    call_slot_ttl_s: Annotated[float, Field(ge=0.5, le=3600)] = 60.0
