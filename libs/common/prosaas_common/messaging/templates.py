"""Message templates written by tenants: ``"Hi {first_name}, see you {date} at {time}."``.

Only plain ``{name}`` fields of a known variable are allowed — no attribute or index access, conversions
or format specs — so a template can never reach into Python objects. ``{{`` and ``}}`` give literal braces.
:func:`template_problems` says what is wrong (for a 422); :func:`render` fills a valid template.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

# Variables every message can use, and the extra ones of appointment automations.
LEAD_VARIABLES = ("first_name", "last_name", "full_name", "business_name", "phone")
APPOINTMENT_VARIABLES = (*LEAD_VARIABLES, "date", "time", "calendar_name", "appointment_title")
FOLLOWUP_VARIABLES = (*LEAD_VARIABLES, "status")

_FORMATTER = string.Formatter()


def template_problems(template: str, allowed: tuple[str, ...]) -> list[str]:
    """Human-readable problems of ``template`` (empty when it is valid)."""
    if not template.strip():
        return ["must not be empty"]
    try:
        parts = list(_FORMATTER.parse(template))
    except ValueError as exc:
        return [f"{exc} (write {{{{ and }}}} for literal braces)"]
    problems: list[str] = []
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if not field.isidentifier():
            problems.append(f"{{{field}}} is not a variable (use one of: {', '.join(allowed)})")
        elif field not in allowed:
            problems.append(f"unknown variable {{{field}}} (use one of: {', '.join(allowed)})")
        elif spec or conversion:
            problems.append(f"{{{field}}}: formatting options are not supported")
    return problems


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill a template that passed :func:`template_problems`; a variable without a value becomes ""."""
    out: list[str] = []
    for literal, field, _, _ in _FORMATTER.parse(template):
        out.append(literal)
        if field is not None:
            out.append(values.get(field, ""))
    return "".join(out).strip()
