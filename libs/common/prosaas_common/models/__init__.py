"""All ORM tables. Import from here so alembic and the services see one metadata."""

from prosaas_common.models.audit import AuditEvent
from prosaas_common.models.auth import AuthSession, PasswordResetToken, RefreshToken
from prosaas_common.models.background_job import BackgroundJob, JobState
from prosaas_common.models.business import Business
from prosaas_common.models.business_settings import BusinessSettings
from prosaas_common.models.calendar import (
    APPOINTMENT_STATUSES,
    DEFAULT_WEEKLY_HOURS,
    WEEKDAYS,
    Appointment,
    AppointmentStatus,
    Calendar,
)
from prosaas_common.models.call import (
    CALL_STATUSES,
    TERMINAL_CALL_STATUSES,
    Call,
    CallDirection,
    CallStatus,
    CallTurn,
)
from prosaas_common.models.dead_letter import DeadLetter
from prosaas_common.models.email import EmailStatus, OutboundEmail
from prosaas_common.models.events import DomainEvent
from prosaas_common.models.intake import MAX_INTAKE_ENDPOINTS, LeadIntakeEndpoint, LeadIntakeReceipt
from prosaas_common.models.lead import Lead, LeadActivity, LeadNote, LeadStatusChange
from prosaas_common.models.lead_import import LeadImport
from prosaas_common.models.lead_status import DEFAULT_LEAD_STATUSES, LeadStatus
from prosaas_common.models.messaging import (
    AutomationTrigger,
    FollowupRule,
    MessageAutomation,
    MessageChannelName,
    MessageStatus,
    OutboundMessage,
)
from prosaas_common.models.outbound_call import (
    FINISHED_RUN_STATUSES,
    RUN_STATUSES,
    OutboundCallRun,
    RunStatus,
)
from prosaas_common.models.phone import BusinessPhoneNumber
from prosaas_common.models.reminder import Notification, Reminder, ReminderChannel, ReminderStatus
from prosaas_common.models.user import ROLES, User, UserRole
from prosaas_common.models.webhook import DeliveryStatus, WebhookDelivery

__all__ = [
    "APPOINTMENT_STATUSES",
    "CALL_STATUSES",
    "DEFAULT_LEAD_STATUSES",
    "DEFAULT_WEEKLY_HOURS",
    "FINISHED_RUN_STATUSES",
    "MAX_INTAKE_ENDPOINTS",
    "ROLES",
    "RUN_STATUSES",
    "TERMINAL_CALL_STATUSES",
    "WEEKDAYS",
    "Appointment",
    "AppointmentStatus",
    "AuditEvent",
    "AuthSession",
    "AutomationTrigger",
    "BackgroundJob",
    "Business",
    "BusinessPhoneNumber",
    "BusinessSettings",
    "Calendar",
    "Call",
    "CallDirection",
    "CallStatus",
    "CallTurn",
    "DeadLetter",
    "DeliveryStatus",
    "DomainEvent",
    "EmailStatus",
    "FollowupRule",
    "JobState",
    "Lead",
    "LeadActivity",
    "LeadImport",
    "LeadIntakeEndpoint",
    "LeadIntakeReceipt",
    "LeadNote",
    "LeadStatus",
    "LeadStatusChange",
    "MessageAutomation",
    "MessageChannelName",
    "MessageStatus",
    "Notification",
    "OutboundCallRun",
    "OutboundEmail",
    "OutboundMessage",
    "PasswordResetToken",
    "RefreshToken",
    "Reminder",
    "ReminderChannel",
    "ReminderStatus",
    "RunStatus",
    "User",
    "UserRole",
    "WebhookDelivery",
]
