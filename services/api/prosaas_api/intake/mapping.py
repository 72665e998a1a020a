"""From whatever a site form, a form builder or n8n posts to the values of a lead.

Pure functions (no I/O): keys are matched case-insensitively and without separators (``First Name``,
``first-name``, ``first_name`` and ``firstName`` are one key), a ``your-`` prefix (Contact Form 7)
is ignored, and a lone ``{"body": {...}}`` or ``{"data": {...}}`` wrapper is unwrapped. Known keys
fill the lead's columns; other short scalars are kept as custom fields. The first non-empty value of
a column wins; a second key for the same column (``phone`` and ``mobile``) is kept as a custom field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prosaas_common.leads.values import (
    InvalidLeadValue,
    clean_tags,
    email_or_none,
    phone_or_none,
    split_name,
)

MAX_CUSTOM_FIELDS = 50
MAX_CUSTOM_KEY = 100
MAX_CUSTOM_VALUE = 1000
MAX_TAGS = 50
MAX_EXTERNAL_ID = 200
MAX_REASON = 10_000
# Column widths of leads: longer names are cut, never refused.
MAX_NAME = 100
MAX_COMPANY = 200

WRAPPERS = frozenset({"body", "data"})

ALIASES: dict[str, str] = {}
for _target, _keys in {
    "name": ("name", "fullname", "contactname"),
    "first_name": ("firstname", "fname", "givenname", "forename"),
    "last_name": ("lastname", "lname", "surname", "familyname"),
    "phone": (
        "phone",
        "phonenumber",
        "tel",
        "telephone",
        "mobile",
        "mobilephone",
        "cell",
        "cellphone",
        "whatsapp",
    ),
    "email": ("email", "mail", "emailaddress"),
    "company": ("company", "companyname", "organization", "organisation", "business"),
    "reason": ("message", "notes", "note", "comment", "comments", "reason", "inquiry", "enquiry"),
    "tags": ("tags", "tag"),
    "external_id": ("externalid", "id", "submissionid", "leadid", "entryid"),
}.items():
    for _key in _keys:
        ALIASES[_key] = _target

_SEPARATORS = re.compile(r"[\W_]+")

Scalar = str | int | float | bool


class InvalidSubmission(ValueError):
    """The post cannot become a lead; ``errors`` are (key as posted or None, message) pairs."""

    def __init__(self, errors: list[tuple[str | None, str]]) -> None:
        super().__init__("; ".join(message for _, message in errors))
        self.errors = errors


@dataclass
class MappedPost:
    """The post sorted into lead columns (raw, not yet normalised) and custom fields."""

    columns: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # column → the key it was posted as
    fields: dict[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True)
class Submission:
    values: dict[str, Any]  # for LeadWriter.upsert: first/last name, phone (E.164), e-mail, …
    external_id: str | None


def canonical(key: str) -> str:
    """``"First Name"``, ``"first-name"``, ``"firstName"`` → ``"firstname"``."""
    return _SEPARATORS.sub("", key.casefold())


def column_of(key: str) -> str | None:
    """The lead column a posted key means, or None for a custom field."""
    name = canonical(key)
    if name in ALIASES:
        return ALIASES[name]
    if name.startswith("your") and name[4:] in ALIASES:
        return ALIASES[name[4:]]
    return None


def unwrap(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """n8n and some builders post ``{"body": {...}}`` or ``{"data": {...}}``: take the inside."""
    if len(data) == 1:
        [(key, inner)] = data.items()
        if canonical(key) in WRAPPERS and isinstance(inner, Mapping):
            return inner
    return data


def clean_text(value: str) -> str:
    """Trimmed, without NUL characters (Postgres refuses them in text and JSON)."""
    return value.replace("\x00", "").strip()


def _custom_value(value: Any) -> Scalar | None:
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        text = clean_text(value)
        return text[:MAX_CUSTOM_VALUE] if text else None
    if isinstance(value, list | tuple) and value and all(isinstance(v, str | int | float) for v in value):
        joined = ", ".join(clean_text(str(v)) for v in value if clean_text(str(v)))
        return joined[:MAX_CUSTOM_VALUE] or None
    return None  # nested objects, nulls and empty values are dropped


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value in ([], {})


def map_post(data: Mapping[str, Any]) -> MappedPost:
    """Sort the (unwrapped) post into lead columns and custom fields."""
    mapped = MappedPost()
    for raw_key, value in unwrap(data).items():
        key = clean_text(str(raw_key))
        if _is_empty(value) or not key:
            continue
        column = column_of(key)
        if column is not None and column not in mapped.columns:
            mapped.columns[column] = value
            mapped.keys[column] = key
            continue
        if key.startswith("_") or len(mapped.fields) >= MAX_CUSTOM_FIELDS:
            continue  # framework noise (_wpnonce, _wpcf7 …) and anything past the cap
        custom = _custom_value(value)
        if custom is not None:
            mapped.fields.setdefault(key[:MAX_CUSTOM_KEY], custom)
    return mapped


def _text(mapped: MappedPost, column: str, errors: list[tuple[str | None, str]]) -> str:
    value = mapped.columns.get(column)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        errors.append((mapped.keys[column], "must be a single text value"))
        return ""
    return clean_text(str(value))


def _tags(mapped: MappedPost, errors: list[tuple[str | None, str]]) -> list[str]:
    value = mapped.columns.get("tags")
    if value is None:
        return []
    if isinstance(value, str):
        raw = value.split(",")
    elif isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        raw = [str(v) for v in value]
    else:
        errors.append((mapped.keys["tags"], "must be a list or a comma-separated string"))
        return []
    try:
        tags = clean_tags([clean_text(tag) for tag in raw])
    except InvalidLeadValue as exc:
        errors.append((mapped.keys["tags"], exc.message))
        return []
    if len(tags) > MAX_TAGS:
        errors.append((mapped.keys["tags"], f"at most {MAX_TAGS} tags"))
        return []
    return tags


def to_submission(mapped: MappedPost, *, region: str, source: str) -> Submission:
    """Normalise the mapped post: phone to E.164 in ``region``, e-mail lower-cased, names split.

    Raises :class:`InvalidSubmission` with every problem at once.
    """
    errors: list[tuple[str | None, str]] = []
    first, last = _text(mapped, "first_name", errors), _text(mapped, "last_name", errors)
    full = _text(mapped, "name", errors)
    if full and not (first or last):
        first, last = split_name(full)
    phone = email = None
    try:
        phone = phone_or_none(_text(mapped, "phone", errors), region)
    except InvalidLeadValue as exc:
        errors.append((mapped.keys["phone"], exc.message))
    try:
        email = email_or_none(_text(mapped, "email", errors))
    except InvalidLeadValue as exc:
        errors.append((mapped.keys["email"], exc.message))
    tags = _tags(mapped, errors)
    external_id = _text(mapped, "external_id", errors) or None
    if external_id is not None and len(external_id) > MAX_EXTERNAL_ID:
        errors.append((mapped.keys["external_id"], f"at most {MAX_EXTERNAL_ID} characters"))
    values: dict[str, Any] = {
        "first_name": first[:MAX_NAME],
        "last_name": last[:MAX_NAME],
        "phone": phone,
        "email": email,
        "company": _text(mapped, "company", errors)[:MAX_COMPANY],
        "reason": _text(mapped, "reason", errors)[:MAX_REASON],
        "tags": tags,
        "fields": dict(mapped.fields),
        "source": source,
    }
    if not errors and not (phone or email or first or last):
        errors.append((None, "a lead needs a phone number, an e-mail address or a name"))
    if errors:
        raise InvalidSubmission(errors)
    return Submission(values=values, external_id=external_id)


def submission_from(data: Mapping[str, Any], *, region: str, source: str) -> Submission:
    """:func:`map_post` then :func:`to_submission`."""
    return to_submission(map_post(data), region=region, source=source)
