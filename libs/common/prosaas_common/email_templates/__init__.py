"""E-mail templates: every e-mail the system sends is a subject, a plain-text and an HTML template here.

``render_email(name, **context)`` renders the three parts of one e-mail. HTML is autoescaped (a lead or
business name cannot inject markup); the subject and the text part are not (they are not HTML). A
missing variable or an unknown template name raises instead of sending a half-empty e-mail.
:func:`add_templated_email` renders one and writes it to the outbox with the business's sender name.
"""

from __future__ import annotations

from prosaas_common.email_templates.outbox import add_templated_email, sender_name
from prosaas_common.email_templates.render import (
    TEMPLATES,
    RenderedEmail,
    UnknownEmailTemplate,
    clean_display_name,
    render_email,
)

__all__ = [
    "TEMPLATES",
    "RenderedEmail",
    "UnknownEmailTemplate",
    "add_templated_email",
    "clean_display_name",
    "render_email",
    "sender_name",
]
