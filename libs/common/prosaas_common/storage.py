"""Where call recordings live: a local directory or an S3-compatible bucket, behind one small interface.

The worker writes a recording once (:meth:`RecordingStore.write` streams chunks in and only a complete
object ever becomes visible: a temporary file renamed into place, or an S3 upload that completes at the
end), the api reads byte ranges of it for ``GET /api/calls/{sid}/recording``. Objects are named by
:func:`recording_key` (``{business_id}/{call_sid}.wav``); ``calls.recording_path`` holds that key, so the
same rows work whichever store holds the files as long as the files move with them.

Keys are checked before use (:func:`check_key`): no absolute paths, ``..`` or odd characters, so a key
never names a file outside the recordings directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from prosaas_common.settings import CommonSettings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

CHUNK_SIZE = 64 * 1024
# S3 parts: every part but the last must be at least 5 MiB; a smaller object is one PutObject.
S3_PART_SIZE = 8 * 1024 * 1024
_KEY = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$")


class StorageError(Exception):
    """The store could not be reached or refused the operation (the caller decides whether to retry)."""


def check_key(key: str) -> str:
    """``key`` when it is a plain relative name (``12/CAxxxx.wav``); ValueError otherwise."""
    if len(key) > 400 or not _KEY.match(key) or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"not a storage key: {key[:80]!r}")
    return key


def recording_key(business_id: int, call_sid: str) -> str:
    """The object name of a call's recording: one folder per business."""
    return check_key(f"{int(business_id)}/{call_sid}.wav")


class RecordingStore(Protocol):
    """A place for recordings. ``read`` yields ``length`` bytes from ``offset`` (to the end when None)."""

    kind: str

    async def size(self, key: str) -> int | None: ...

    async def write(self, key: str, chunks: AsyncIterator[bytes]) -> int: ...

    def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...


class LocalStore:
    """Files under ``root`` (created on first write). File I/O goes through anyio's worker threads, as
    Starlette's own file responses do, so a slow disk never blocks the event loop."""

    kind = "local"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    async def size(self, key: str) -> int | None:
        try:
            stat = await anyio.Path(self.path_of(key)).stat()
        except FileNotFoundError:
            return None
        except OSError as exc:  # permissions, a vanished mount: not "no recording"
            raise StorageError(f"local storage: {type(exc).__name__}: {exc}"[:300]) from exc
        return stat.st_size

    async def write(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        """Stream ``chunks`` into a temporary file beside the target, flush it to disk and rename it
        into place: a crash or a failed download never leaves a partial recording under ``key``."""
        target = self.path_of(key)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        written = 0
        try:
            await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
            async with await anyio.open_file(partial, "wb") as file:
                async for chunk in chunks:
                    await file.write(chunk)
                    written += len(chunk)
                await file.flush()
                await anyio.to_thread.run_sync(os.fsync, file.wrapped.fileno())
            await anyio.Path(partial).rename(target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                await anyio.Path(partial).unlink(missing_ok=True)
            if isinstance(exc, OSError):  # a full disk, no permission: the caller may retry later
                raise StorageError(f"local storage: {type(exc).__name__}: {exc}"[:300]) from exc
            raise
        return written

    async def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        remaining = length
        async with await anyio.open_file(self.path_of(key), "rb") as file:
            await file.seek(offset)
            while remaining is None or remaining > 0:
                size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = await file.read(size)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    async def delete(self, key: str) -> None:
        await anyio.Path(self.path_of(key)).unlink(missing_ok=True)


class S3Store:
    """Objects in an S3-compatible bucket through aiobotocore.

    One client per operation (the session and its loaded service model are shared): nothing to open at
    startup or close at shutdown, and a read keeps its client exactly as long as its stream lives.
    """

    kind = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
    ) -> None:
        from aiobotocore.session import get_session

        self.bucket = bucket
        self._session = get_session()
        self._client_args: dict[str, Any] = {"region_name": region, "endpoint_url": endpoint_url}
        if access_key_id is not None and secret_access_key is not None:
            self._client_args |= {
                "aws_access_key_id": access_key_id,
                "aws_secret_access_key": secret_access_key,
            }

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[S3Client]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            async with self._session.create_client("s3", **self._client_args) as client:
                yield client
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise StorageError(f"S3 {error.get('Code', '?')}: {error.get('Message', '')}"[:300]) from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 unreachable: {type(exc).__name__}"[:300]) from exc

    async def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        async with self.client() as s3:
            try:
                head = await s3.head_object(Bucket=self.bucket, Key=check_key(key))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
            return int(head["ContentLength"])

    async def write(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        """Small objects in one PutObject; larger ones as a multipart upload of 8 MiB parts that is
        completed at the end (and aborted on any failure), so the key appears only when whole."""
        check_key(key)
        buffer = bytearray()
        written = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        async with self.client() as s3:
            try:
                async for chunk in chunks:
                    buffer += chunk
                    written += len(chunk)
                    if len(buffer) >= S3_PART_SIZE:
                        if upload_id is None:
                            created = await s3.create_multipart_upload(
                                Bucket=self.bucket, Key=key, ContentType="audio/wav"
                            )
                            upload_id = created["UploadId"]
                        part = await s3.upload_part(
                            Bucket=self.bucket,
                            Key=key,
                            UploadId=upload_id,
                            PartNumber=len(parts) + 1,
                            Body=bytes(buffer),
                        )
                        parts.append({"ETag": part["ETag"], "PartNumber": len(parts) + 1})
                        buffer.clear()
                if upload_id is None:
                    await s3.put_object(
                        Bucket=self.bucket, Key=key, Body=bytes(buffer), ContentType="audio/wav"
                    )
                    return written
                if buffer:
                    part = await s3.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=len(parts) + 1,
                        Body=bytes(buffer),
                    )
                    parts.append({"ETag": part["ETag"], "PartNumber": len(parts) + 1})
                await s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                )
            except BaseException:
                if upload_id is not None:
                    with contextlib.suppress(Exception):
                        await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                raise
        return written

    async def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        check_key(key)
        if length == 0:
            return
        wanted = f"bytes={offset}-" + (str(offset + length - 1) if length is not None else "")
        async with self.client() as s3:
            response = await s3.get_object(Bucket=self.bucket, Key=key, Range=wanted)
            async with response["Body"] as body:
                async for chunk in body.iter_chunks(CHUNK_SIZE):
                    yield chunk

    async def delete(self, key: str) -> None:
        async with self.client() as s3:
            await s3.delete_object(Bucket=self.bucket, Key=check_key(key))


def open_store(settings: CommonSettings) -> RecordingStore:
    """The store ``RECORDINGS_STORAGE`` names (cheap: nothing connects until an operation runs)."""
    if settings.recordings_storage == "s3":
        assert settings.s3_bucket is not None  # the settings refuse s3 without a bucket
        secret = settings.s3_secret_access_key
        return S3Store(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
        )
    return LocalStore(settings.recordings_dir)
