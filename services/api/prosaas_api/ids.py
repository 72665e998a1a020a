"""Row ids as the API accepts them: positive and within Postgres ``bigint``, so an absurd id is a 422
naming the parameter instead of a database error."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

MAX_ROW_ID = 2**63 - 1

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
QueryId = Annotated[int, Query(ge=1, le=MAX_ROW_ID)]
BodyId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
