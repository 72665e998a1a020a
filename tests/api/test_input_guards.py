"""Input the schemas cannot express: NUL characters and numbers beyond Postgres ranges answer 422."""

from __future__ import annotations

import httpx

from tests.api.lead_helpers import MakeAccount, signed_in_team


async def test_nul_characters_are_refused_with_422(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    body = await client.post(
        "/api/leads",
        content=b'{"name": "Ada\\u0000"}',
        headers={**team.agent, "content-type": "application/json"},
    )
    assert body.status_code == 422
    assert body.json()["detail"][0]["msg"] == "NUL characters are not accepted"
    query = await client.get("/api/leads", params={"q": "a\x00b"}, headers=team.agent)
    assert query.status_code == 422
    # An escaped backslash before "u0000" is ordinary text.
    text = await client.post(
        "/api/leads",
        content=b'{"name": "C:\\\\u0000dir"}',
        headers={**team.agent, "content-type": "application/json"},
    )
    assert text.status_code == 201, text.text
    assert text.json()["first_name"] == "C:\\u0000dir"


async def test_ids_beyond_bigint_are_422_not_500(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    huge = 2**64
    assert (await client.get(f"/api/leads/{huge}", headers=team.agent)).status_code == 422
    assert (
        await client.get("/api/leads", params={"owner_user_id": huge}, headers=team.agent)
    ).status_code == 422
    moved = await client.post("/api/leads", json={"name": "A", "status_id": huge}, headers=team.agent)
    assert moved.status_code == 422
    assert (await client.post(f"/api/users/{-huge}/deactivate", headers=team.owner)).status_code == 422
