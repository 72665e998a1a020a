"""Recording storage: the local directory and an S3-compatible bucket (moto's S3 server in a process)
behave the same — whole objects only (a failed write leaves nothing), exact byte ranges, sizes, deletes
— and keys never leave their root."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from prosaas_common.settings import CommonSettings, ConfigError, build_settings
from prosaas_common.storage import (
    LocalStore,
    RecordingStore,
    S3Store,
    StorageError,
    check_key,
    open_store,
    recording_key,
)
from tests.fakes.s3_server import s3_server
from tests.support import free_port

BUCKET = "prosaas-recordings"
CALL_SID = "CA" + "ab" * 16
BODY = bytes(range(256)) * 1000  # 256,000 bytes, every offset's value known


async def chunks_of(data: bytes, size: int = 10_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def failing_after(data: bytes) -> AsyncIterator[bytes]:
    yield data
    raise ConnectionResetError("download cut off")


async def read_all(store: RecordingStore, key: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, offset, length)])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as url:
        yield url


def s3_store(endpoint: str, bucket: str = BUCKET) -> S3Store:
    return S3Store(
        bucket=bucket,
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id="test-key",
        secret_access_key="test-secret",
    )


@pytest.fixture
async def s3(s3_endpoint: str) -> AsyncIterator[S3Store]:
    store = s3_store(s3_endpoint)
    async with store.client() as client:
        await client.create_bucket(Bucket=BUCKET)
    yield store
    async with store.client() as client:
        listed = await client.list_objects_v2(Bucket=BUCKET)
        for item in listed.get("Contents", []):
            await client.delete_object(Bucket=BUCKET, Key=item["Key"])
        await client.delete_bucket(Bucket=BUCKET)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> RecordingStore:
    if request.param == "local":
        return LocalStore(tmp_path / "recordings")
    result: RecordingStore = request.getfixturevalue("s3")
    return result


async def test_a_written_recording_reads_back_whole_and_in_exact_ranges(store: RecordingStore) -> None:
    key = recording_key(7, CALL_SID)
    assert key == f"7/{CALL_SID}.wav"
    assert await store.size(key) is None

    assert await store.write(key, chunks_of(BODY)) == len(BODY)

    assert await store.size(key) == len(BODY)
    assert await read_all(store, key) == BODY
    assert await read_all(store, key, 1000, 300) == BODY[1000:1300]
    assert await read_all(store, key, len(BODY) - 5) == BODY[-5:]
    assert await read_all(store, key, 70_000, 1) == BODY[70_000:70_001]
    assert await read_all(store, key, 0, 0) == b""


async def test_a_second_write_replaces_the_object(store: RecordingStore) -> None:
    key = recording_key(7, CALL_SID)
    await store.write(key, chunks_of(b"first version"))
    await store.write(key, chunks_of(b"second"))
    assert await read_all(store, key) == b"second"


async def test_a_failed_write_leaves_nothing_behind(store: RecordingStore, tmp_path: Path) -> None:
    key = recording_key(7, CALL_SID)
    with pytest.raises((ConnectionResetError, StorageError)):
        await store.write(key, failing_after(b"RIFF" + bytes(5000)))
    assert await store.size(key) is None
    if isinstance(store, LocalStore):
        assert list((tmp_path / "recordings").rglob("*")) == [tmp_path / "recordings" / "7"]


async def test_delete_removes_the_object_and_is_idempotent(store: RecordingStore) -> None:
    key = recording_key(3, CALL_SID)
    await store.write(key, chunks_of(b"abc"))
    await store.delete(key)
    await store.delete(key)
    assert await store.size(key) is None


async def test_a_large_s3_object_is_uploaded_in_parts_and_reads_across_them(s3: S3Store) -> None:
    key = recording_key(9, CALL_SID)
    big = bytes(range(251)) * (17 * 1024 * 1024 // 251 + 1)  # > 2 parts of 8 MiB, a prime period

    assert await s3.write(key, chunks_of(big, 1024 * 1024)) == len(big)

    assert await s3.size(key) == len(big)
    boundary = 8 * 1024 * 1024
    assert await read_all(s3, key, boundary - 10, 20) == big[boundary - 10 : boundary + 10]
    async with s3.client() as client:
        uploads = await client.list_multipart_uploads(Bucket=BUCKET)
    assert uploads.get("Uploads", []) == []


async def test_a_failed_multipart_upload_is_aborted(s3: S3Store) -> None:
    key = recording_key(9, CALL_SID)

    async def big_then_broken() -> AsyncIterator[bytes]:
        yield bytes(9 * 1024 * 1024)  # the first part goes up
        raise ConnectionResetError("download cut off")

    with pytest.raises((ConnectionResetError, StorageError)):
        await s3.write(key, big_then_broken())
    assert await s3.size(key) is None
    async with s3.client() as client:
        uploads = await client.list_multipart_uploads(Bucket=BUCKET)
    assert uploads.get("Uploads", []) == []


async def test_an_unreachable_or_missing_bucket_is_a_storage_error(s3_endpoint: str) -> None:
    with pytest.raises(StorageError, match="NoSuchBucket"):
        await s3_store(s3_endpoint, bucket="no-such-bucket").write("1/x.wav", chunks_of(b"x"))
    with pytest.raises(StorageError):
        await s3_store(f"http://127.0.0.1:{free_port()}").size("1/x.wav")


@pytest.mark.parametrize(
    "key",
    ["../etc/passwd", "/abs/path.wav", "a//b.wav", "a/./b.wav", "a/../b.wav", "", "a b.wav", "a/.hidden"],
)
def test_keys_never_leave_the_root(key: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a storage key"):
        check_key(key)
    with pytest.raises(ValueError, match="not a storage key"):
        LocalStore(tmp_path).path_of(key)


def settings(**values: Any) -> CommonSettings:
    return build_settings(CommonSettings, app_env="test", **values)


def test_the_settings_choose_the_store(tmp_path: Path) -> None:
    local = open_store(settings(recordings_dir=str(tmp_path)))
    assert isinstance(local, LocalStore)
    assert local.root == tmp_path.resolve()
    relative = open_store(settings())
    assert isinstance(relative, LocalStore)
    assert relative.root == (Path.cwd() / "var" / "recordings").resolve()
    s3 = open_store(
        settings(
            recordings_storage="S3",
            s3_bucket=BUCKET,
            s3_endpoint_url="http://127.0.0.1:9000/",
            s3_access_key_id="k",
            s3_secret_access_key="s",
        )
    )
    assert isinstance(s3, S3Store)
    assert s3.bucket == BUCKET


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"recordings_storage": "s3"}, "S3_BUCKET: must be set"),
        ({"recordings_storage": "s3", "s3_bucket": "b", "s3_access_key_id": "k"}, "set both or neither"),
        ({"recordings_storage": "ftp"}, "RECORDINGS_STORAGE"),
        ({"s3_endpoint_url": "minio:9000"}, "S3_ENDPOINT_URL"),
    ],
)
def test_bad_storage_settings_name_the_variable(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings(**values)
    assert message in str(error.value)


def test_unset_s3_variables_from_compose_count_as_unset() -> None:
    values = settings(s3_bucket="", s3_access_key_id=" ", s3_secret_access_key="", s3_endpoint_url="")
    assert (values.s3_bucket, values.s3_access_key_id, values.s3_secret_access_key) == (None, None, None)
    assert values.s3_endpoint_url is None


async def test_an_unwritable_directory_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = LocalStore(tmp_path / "file")
    with pytest.raises(StorageError, match="local storage"):
        await store.write(recording_key(1, CALL_SID), chunks_of(b"RIFF"))
