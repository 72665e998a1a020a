"""All ORM tables. Import from here so alembic and the services see one metadata."""

from prosaas_common.models.audit import AuditEvent
from prosaas_common.models.auth import AuthSession, PasswordResetToken, RefreshToken
from prosaas_common.models.business import Business
from prosaas_common.models.email import EmailStatus, OutboundEmail
from prosaas_common.models.lead_status import DEFAULT_LEAD_STATUSES, LeadStatus
from prosaas_common.models.phone import BusinessPhoneNumber
from prosaas_common.models.user import ROLES, User, UserRole

__all__ = [
    "DEFAULT_LEAD_STATUSES",
    "ROLES",
    "AuditEvent",
    "AuthSession",
    "Business",
    "BusinessPhoneNumber",
    "EmailStatus",
    "LeadStatus",
    "OutboundEmail",
    "PasswordResetToken",
    "RefreshToken",
    "User",
    "UserRole",
]
