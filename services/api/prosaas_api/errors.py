"""Errors in the shapes the SPA reads: 422 field errors like FastAPI's own, 409 with a message."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError


def field_error(
    field: str | tuple[str | int, ...], message: str, *, location: str = "body"
) -> RequestValidationError:
    """A 422 naming one field, in the same shape as FastAPI's validation errors."""
    path = (field,) if isinstance(field, str) else field
    return RequestValidationError([{"loc": (location, *path), "msg": message, "type": "value_error"}])


def conflict(message: str, **extra: Any) -> HTTPException:
    return HTTPException(status_code=409, detail={"message": message, **extra})
