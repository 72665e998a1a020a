"""The OpenAPI contract the SPA generates its client from: explicit, unique, stable operation ids,
listed with their permissions in docs/api-operations.md."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import httpx
from fastapi.routing import APIRoute, iter_route_contexts

from prosaas_api.operations_doc import operations, render, schema_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "api-operations.md"
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")


def test_every_operation_has_an_explicit_unique_snake_case_id() -> None:
    app = schema_app()
    routes = [
        c.original_route for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)
    ]
    implicit = [route.path for route in routes if route.include_in_schema and not route.operation_id]
    assert implicit == [], f"routes without operation_id=…: {implicit}"
    ids = [row[0] for row in operations(app)]
    assert [i for i in ids if not SNAKE.match(i)] == []
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    schema_ids = {op["operationId"] for path in app.openapi()["paths"].values() for op in path.values()}
    assert schema_ids == set(ids)


def test_the_operations_page_is_up_to_date() -> None:
    expected = render(schema_app())
    assert DOC.read_text() == expected, (
        "docs/api-operations.md is out of date: run "
        "`.venv/bin/python -m prosaas_api.operations_doc > docs/api-operations.md`"
    )


async def test_docs_and_schema_are_served(client: httpx.AsyncClient) -> None:
    docs = await client.get("/api/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    schema = (await client.get("/api/openapi.json")).json()
    assert schema["paths"]["/api/leads"]["get"]["operationId"] == "leads_list"
