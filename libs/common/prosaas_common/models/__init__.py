"""All ORM tables. Import from here so alembic and the services see one metadata."""

from prosaas_common.models.business import Business
from prosaas_common.models.user import ROLES, User, UserRole

__all__ = ["ROLES", "Business", "User", "UserRole"]
