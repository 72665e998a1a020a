"""All ORM tables. Import from here so alembic and the services see one metadata."""

from prosaas_common.models.audit import AuditEvent
from prosaas_common.models.auth import AuthSession, RefreshToken
from prosaas_common.models.business import Business
from prosaas_common.models.user import ROLES, User, UserRole

__all__ = ["ROLES", "AuditEvent", "AuthSession", "Business", "RefreshToken", "User", "UserRole"]
