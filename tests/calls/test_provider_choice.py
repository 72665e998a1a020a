"""Which voice provider a call gets: the business's ``ai_provider`` against what the deployment has
(an OpenAI key, espeak-ng for the offline stack)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from prosaas_calls.call_runner import settings_provider_factory
from prosaas_calls.providers.base import SessionConfig
from prosaas_calls.providers.offline.provider import OfflineProvider
from prosaas_calls.providers.openai_realtime import OpenAIRealtimeProvider
from prosaas_calls.settings import CallsSettings
from prosaas_calls.speech import tts

CONFIG = SessionConfig(
    call_sid="CA" + "9" * 32, business_id=1, business_name="B", greeting="Hi", instructions=""
)


@pytest.mark.parametrize(
    ("choice", "key", "expected"),
    [
        ("auto", "sk-test", OpenAIRealtimeProvider),
        ("openai", "sk-test", OpenAIRealtimeProvider),
        ("offline", "sk-test", OfflineProvider),
        ("auto", "", OfflineProvider),
        ("openai", "", OfflineProvider),  # wanted OpenAI, no key here: answered offline (with a WARNING)
        ("offline", "", OfflineProvider),
    ],
)
def test_the_business_choice_and_the_deployment_pick_the_provider(
    make_settings: Callable[..., CallsSettings], choice: str, key: str, expected: type[Any]
) -> None:
    factory = settings_provider_factory(make_settings(openai_api_key=key))
    assert type(factory(replace(CONFIG, ai_provider=choice))) is expected


def test_without_a_key_or_espeak_there_is_no_provider(
    make_settings: Callable[..., CallsSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tts, "ESPEAK", "espeak-ng-not-installed")
    assert settings_provider_factory(make_settings(openai_api_key=""))(CONFIG) is None
