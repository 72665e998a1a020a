"""Normalising what people type about a lead: phone to E.164, e-mail, names, tags."""

from __future__ import annotations

import re

from prosaas_common.phones import to_e164

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TAG = re.compile(r"^[\w][\w .:/+-]{0,49}$")


class InvalidLeadValue(ValueError):
    """A value that cannot be stored; ``field`` names it for the 422 / the import's row error."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def phone_or_none(raw: str | None, region: str) -> str | None:
    if raw is None or not str(raw).strip():
        return None
    try:
        return to_e164(str(raw).strip(), region)
    except ValueError as exc:
        raise InvalidLeadValue("phone", str(exc)) from None


def email_or_none(raw: str | None) -> str | None:
    if raw is None or not str(raw).strip():
        return None
    email = str(raw).strip().lower()
    if len(email) > 320 or not EMAIL.match(email):
        raise InvalidLeadValue("email", f"{raw!r} is not an e-mail address")
    return email


def split_name(full: str) -> tuple[str, str]:
    """``"Ada King Lovelace"`` → ``("Ada", "King Lovelace")``."""
    parts = full.strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def clean_tags(tags: list[str] | tuple[str, ...]) -> list[str]:
    """Trimmed, lower-cased, de-duplicated, in the order given."""
    seen: dict[str, None] = {}
    for raw in tags:
        tag = str(raw).strip().lower()
        if not tag:
            continue
        if not TAG.match(tag):
            raise InvalidLeadValue("tags", f"{raw!r} is not a tag (letters, digits, spaces, .:/+-; ≤ 50)")
        seen.setdefault(tag, None)
    return list(seen)
