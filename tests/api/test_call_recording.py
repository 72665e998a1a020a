"""``GET /api/calls/{sid}/recording``: the stored WAV streamed whole (200) or by one byte range (206 with
``Content-Range``), 416 for a malformed or unsatisfiable range, 404 for another business's call exactly
as for a missing one and for a call without a recording (or whose file is gone); the call's detail links
the recording only when there is one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_api.app import create_app
from prosaas_api.calls.recording import ByteRange, Unsatisfiable, parse_range
from prosaas_api.settings import ApiSettings
from prosaas_common.storage import LocalStore, recording_key
from tests.api.lead_helpers import MakeAccount, Team, signed_in_team
from tests.api.test_calls_api import add_call, sid
from tests.support import asgi_client

WAV = b"RIFF" + bytes(range(256)) * 40  # 10,244 bytes, every offset's value known


@pytest.fixture
async def api(make_settings: Callable[..., ApiSettings], tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(make_settings(recordings_dir=str(tmp_path)))) as http:
        yield http


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def a_recorded_call(engine: AsyncEngine, tmp_path: Path, team: Team, n: int = 1) -> str:
    key = recording_key(team.business_id, sid(n))
    await LocalStore(tmp_path).write(key, one_chunk(WAV))
    await add_call(engine, team.business_id, n, recording_sid="RE" + "1" * 32, recording_path=key)
    return f"/api/calls/{sid(n)}/recording"


async def test_the_whole_recording_is_streamed_with_its_headers(
    api: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, tmp_path: Path
) -> None:
    team = await signed_in_team(api, make_account)
    url = await a_recorded_call(db_engine, tmp_path, team)

    response = await api.get(url, headers=team.agent)

    assert response.status_code == 200
    assert response.content == WAV
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["content-length"] == str(len(WAV))
    assert response.headers["accept-ranges"] == "bytes"
    assert "content-range" not in response.headers
    detail = (await api.get(f"/api/calls/{sid(1)}", headers=team.agent)).json()
    assert detail["recording_url"] == url


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-1099", 100, 1099),
        ("bytes=10000-", 10000, len(WAV) - 1),
        ("bytes=-44", len(WAV) - 44, len(WAV) - 1),
        ("bytes=5000-999999", 5000, len(WAV) - 1),  # an end past the file is cut to it
        ("bytes=-999999", 0, len(WAV) - 1),
    ],
)
async def test_a_range_gets_exactly_those_bytes(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    db_engine: AsyncEngine,
    tmp_path: Path,
    header: str,
    start: int,
    end: int,
) -> None:
    team = await signed_in_team(api, make_account)
    url = await a_recorded_call(db_engine, tmp_path, team)

    response = await api.get(url, headers={**team.agent, "Range": header})

    assert response.status_code == 206
    assert response.content == WAV[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(WAV)}"
    assert response.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize(
    "header", [f"bytes={len(WAV)}-", "bytes=20000-30000", "bytes=9-3", "bytes=-0", "bytes=x-y", "items=0-5"]
)
async def test_a_bad_or_unsatisfiable_range_is_416(
    api: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, tmp_path: Path, header: str
) -> None:
    team = await signed_in_team(api, make_account)
    url = await a_recorded_call(db_engine, tmp_path, team)

    response = await api.get(url, headers={**team.agent, "Range": header})

    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(WAV)}"


async def test_several_ranges_get_the_whole_file(
    api: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, tmp_path: Path
) -> None:
    team = await signed_in_team(api, make_account)
    url = await a_recorded_call(db_engine, tmp_path, team)
    response = await api.get(url, headers={**team.agent, "Range": "bytes=0-1,5-9"})
    assert (response.status_code, response.content) == (200, WAV)


async def test_another_business_s_recording_is_404_like_a_missing_call(
    api: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, tmp_path: Path
) -> None:
    a = await signed_in_team(api, make_account, "a.example")
    b = await signed_in_team(api, make_account, "b.example")
    url = await a_recorded_call(db_engine, tmp_path, a)

    theirs = await api.get(url, headers={**b.owner, "Range": "bytes=0-3"})
    missing = await api.get(f"/api/calls/{sid(99)}/recording", headers=b.owner)

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json() == {"detail": "call not found"}
    assert (await api.get(url)).status_code == 401


async def test_no_recording_yet_or_a_lost_file_is_404(
    api: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, tmp_path: Path
) -> None:
    team = await signed_in_team(api, make_account)
    await add_call(db_engine, team.business_id, 1)
    lost = await a_recorded_call(db_engine, tmp_path, team, n=2)
    (tmp_path / str(team.business_id) / f"{sid(2)}.wav").unlink()

    none_yet = await api.get(f"/api/calls/{sid(1)}/recording", headers=team.agent)
    gone = await api.get(lost, headers=team.agent)

    assert (none_yet.status_code, none_yet.json()) == (404, {"detail": "recording not found"})
    assert (gone.status_code, gone.json()) == (404, {"detail": "recording not found"})
    detail = (await api.get(f"/api/calls/{sid(1)}", headers=team.agent)).json()
    assert detail["recording_url"] is None


async def test_a_malformed_sid_is_422(api: httpx.AsyncClient, make_account: MakeAccount) -> None:
    team = await signed_in_team(api, make_account)
    response = await api.get("/api/calls/..%2F..%2Fetc/recording", headers=team.agent)
    assert response.status_code in (404, 422)
    response = await api.get("/api/calls/CAxyz/recording", headers=team.agent)
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", ByteRange(0, 9)),
        (" bytes = 5 - ", ByteRange(5, 99)),
        ("BYTES=-10", ByteRange(90, 99)),
        ("bytes=1-2,4-5", None),
    ],
)
def test_parse_range(header: str | None, expected: Any) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize(
    "header", ["bytes=100-", "bytes=", "bytes=-", "bytes=1-2-3", "bytes=99999999999999999999-"]
)
def test_parse_range_refuses(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 100)
