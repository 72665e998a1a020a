"""Phone numbers to E.164 with ``phonenumbers``, read in a business's default region."""

from __future__ import annotations

import phonenumbers

SUPPORTED_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)


def to_e164(raw: str, region: str) -> str:
    """The E.164 form of ``raw`` (national numbers read in ``region``); ValueError if it is not valid."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{raw!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{raw!r} is not a valid phone number for {region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
