"""Bodies of /api/users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from prosaas_api.auth.schemas import Email

BusinessRole = Literal["owner", "admin", "agent"]


class UserOut(BaseModel):
    id: int
    email: str
    full_name: str
    role: str
    is_active: bool
    invited: bool = Field(description="true until the user has chosen a password")
    last_login_at: datetime | None
    created_at: datetime


class UserInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: Annotated[str, Field(max_length=200)] = ""
    role: BusinessRole = "agent"


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_name: Annotated[str, Field(max_length=200)] | None = None
    role: BusinessRole | None = None


class UserPage(BaseModel):
    items: list[UserOut]
    next_after: int | None
