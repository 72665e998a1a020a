"""Request and response bodies of /api/auth."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from prosaas_api.auth.passwords import password_problem

Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"),
]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Annotated[str, Field(min_length=1, max_length=256)]
    client: Literal["browser", "api"] = Field(
        "browser", description="browser: HttpOnly cookies + CSRF token; api: tokens in the body"
    )


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, Field(min_length=16, max_length=256)] | None = Field(
        None, description="API clients send their refresh token; browsers send the cookie instead"
    )


class BusinessSummary(BaseModel):
    id: int
    name: str


class Me(BaseModel):
    id: int
    email: str
    full_name: str
    role: str
    business: BusinessSummary | None
    impersonating: bool = Field(
        False, description="a system admin acting as ``business`` (with ``acting_role``)"
    )
    acting_role: str = Field(description="the role the permission checks use (owner while impersonating)")


class BrowserSession(BaseModel):
    """Signed in with cookies; send ``csrf_token`` as ``X-CSRF-Token`` on POST/PUT/PATCH/DELETE."""

    client: Literal["browser"] = "browser"
    user: Me
    csrf_token: str
    access_expires_at: datetime


class ApiTokens(BaseModel):
    client: Literal["api"] = "api"
    user: Me
    token_type: Literal["bearer"] = "bearer"
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_at: datetime


class ForgotRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    new_password: Annotated[str, Field(min_length=1, max_length=256)]

    @field_validator("new_password")
    @classmethod
    def _strong_enough(cls, value: str) -> str:
        problem = password_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class ResetRequest(NewPassword):
    token: Annotated[str, Field(min_length=16, max_length=256)]


class PasswordChange(NewPassword):
    current_password: Annotated[str, Field(min_length=1, max_length=256)]


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str
