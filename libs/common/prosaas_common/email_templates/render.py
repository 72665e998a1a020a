"""Rendering of the e-mail templates in ``templates/`` (Jinja2, strict about undefined variables)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

# Each name has templates/<name>/subject.txt, body.txt and body.html (extending templates/base.html).
TEMPLATES = frozenset({"password_reset", "invitation", "reminder", "notification"})
SUBJECT_MAX = 300  # outbound_emails.subject
DISPLAY_NAME_MAX = 200  # outbound_emails.from_name, business_settings.email_from_name
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SPACES = re.compile(r"\s+")


class UnknownEmailTemplate(LookupError):
    """No e-mail template has this name."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def nl2br(value: object) -> Markup:
    """Escaped text with its line breaks as ``<br>`` (the ``nl2br`` filter of the HTML templates)."""
    return Markup("<br>\n").join(escape(line) for line in str(value).splitlines())


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("prosaas_common.email_templates", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["nl2br"] = nl2br
    return env


def one_line(value: str) -> str:
    """Control characters (CR, LF, tab, …) and runs of spaces become one space; no edges."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()


def clean_display_name(value: str | None) -> str | None:
    """A name fit for the display-name part of a header: one line, at most 200 characters, or None."""
    if value is None:
        return None
    return one_line(value)[:DISPLAY_NAME_MAX].strip() or None


def render_email(name: str, **context: Any) -> RenderedEmail:
    """Render e-mail ``name`` with ``context``; :class:`UnknownEmailTemplate` for a name not in
    :data:`TEMPLATES`, ``jinja2.UndefinedError`` for a variable the templates need but were not given."""
    if name not in TEMPLATES:
        raise UnknownEmailTemplate(
            f"no e-mail template named {name!r} (known: {', '.join(sorted(TEMPLATES))})"
        )
    env = environment()
    subject = one_line(env.get_template(f"{name}/subject.txt").render(context))[:SUBJECT_MAX]
    text = env.get_template(f"{name}/body.txt").render(context).rstrip("\n") + "\n"
    html = env.get_template(f"{name}/body.html").render({**context, "subject": subject})
    return RenderedEmail(subject=subject, text=text, html=html)
