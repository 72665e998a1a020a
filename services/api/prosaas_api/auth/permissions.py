"""The permission matrix: which role may do what. Enforced by one dependency, :func:`require`.

docs/permissions.md is this table in prose; a test keeps the two in step.
"""

from __future__ import annotations

from enum import StrEnum

from prosaas_common.models import UserRole


class Permission(StrEnum):
    PLATFORM_ADMIN = "platform.admin"  # manage businesses, impersonate
    BUSINESS_READ = "business.read"  # see the business and its settings
    BUSINESS_MANAGE = "business.manage"  # change settings, phone numbers, webhooks
    USERS_MANAGE = "users.manage"  # invite, change role (below owner), deactivate
    OWNERS_MANAGE = "owners.manage"  # create or demote owners
    LEADS_READ = "leads.read"
    LEADS_WRITE = "leads.write"  # create, update, move, notes
    LEADS_DELETE = "leads.delete"  # delete, bulk changes, import
    STATUSES_MANAGE = "statuses.manage"  # lead statuses and their order
    APPOINTMENTS_READ = "appointments.read"  # calendars, availability, appointments
    APPOINTMENTS_WRITE = "appointments.write"  # book, reschedule, cancel
    CALENDARS_MANAGE = "calendars.manage"  # create, change and delete calendars
    AUTOMATIONS_MANAGE = "automations.manage"  # appointment automations and follow-up rules


_OWNER_ADMIN = frozenset({UserRole.OWNER, UserRole.ADMIN})
_STAFF = frozenset({UserRole.OWNER, UserRole.ADMIN, UserRole.AGENT})

MATRIX: dict[Permission, frozenset[UserRole]] = {
    Permission.PLATFORM_ADMIN: frozenset({UserRole.SYSTEM_ADMIN}),
    Permission.BUSINESS_READ: _STAFF,
    Permission.BUSINESS_MANAGE: _OWNER_ADMIN,
    Permission.USERS_MANAGE: _OWNER_ADMIN,
    Permission.OWNERS_MANAGE: frozenset({UserRole.OWNER}),
    Permission.LEADS_READ: _STAFF,
    Permission.LEADS_WRITE: _STAFF,
    Permission.LEADS_DELETE: _OWNER_ADMIN,
    Permission.STATUSES_MANAGE: _OWNER_ADMIN,
    Permission.APPOINTMENTS_READ: _STAFF,
    Permission.APPOINTMENTS_WRITE: _STAFF,
    Permission.CALENDARS_MANAGE: _OWNER_ADMIN,
    Permission.AUTOMATIONS_MANAGE: _OWNER_ADMIN,
}


def allows(role: UserRole, permission: Permission) -> bool:
    return role in MATRIX[permission]
