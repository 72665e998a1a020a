"""Serving a call's recording from the store: the whole WAV, or one byte range of it (RFC 9110 §14).

Audio players seek with ``Range: bytes=start-end``; one range is answered 206 with ``Content-Range``,
a range that starts past the end or a malformed header 416 with ``Content-Range: bytes */size``. A
header asking for several ranges gets the whole file (200), which the RFC allows: we never build
``multipart/byteranges``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import HTTPException
from fastapi.responses import StreamingResponse

from prosaas_common.logging import get_logger
from prosaas_common.storage import RecordingStore, StorageError

log = get_logger("prosaas.api.recordings")

_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")
MEDIA_TYPE = "audio/wav"


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(Exception):
    """The Range header is malformed or names no byte of the file."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range ``header`` asks for within ``size`` bytes; None for the whole file."""
    if header is None:
        return None
    value = header.strip().replace(" ", "")
    if "," in value and value.lower().startswith("bytes="):
        return None  # several ranges: answered with the whole file
    match = _RANGE.match(value.lower())
    if match is None:
        raise Unsatisfiable
    first, last = match.groups()
    if not first:
        if not last or int(last) == 0:
            raise Unsatisfiable
        suffix = min(int(last), size)  # the last N bytes
        if suffix == 0:
            raise Unsatisfiable
        return ByteRange(size - suffix, size - 1)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise Unsatisfiable
    return ByteRange(start, end)


async def recording_response(
    store: RecordingStore, key: str, call_sid: str, range_header: str | None
) -> StreamingResponse:
    """The recording under ``key`` as a streamed ``audio/wav`` response (404 when the file is gone)."""
    try:
        size = await store.size(key)
    except StorageError as exc:
        log.warning("recording.storage_unavailable", call_sid=call_sid, storage=store.kind, error=str(exc))
        raise HTTPException(status_code=503, detail="recording storage unavailable") from None
    except ValueError:  # not a key this store can hold: nothing to serve
        size = None
    if size is None:
        log.warning("recording.file_missing", call_sid=call_sid, storage=store.kind, key=key)
        raise HTTPException(status_code=404, detail="recording not found")
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'inline; filename="{call_sid}.wav"',
        "Cache-Control": "private, no-cache",
    }
    try:
        wanted = parse_range(range_header, size)
    except Unsatisfiable:
        raise HTTPException(
            status_code=416,
            detail="range not satisfiable",
            headers={**headers, "Content-Range": f"bytes */{size}"},
        ) from None
    if wanted is None:
        return StreamingResponse(
            store.read(key), media_type=MEDIA_TYPE, headers={**headers, "Content-Length": str(size)}
        )
    return StreamingResponse(
        store.read(key, wanted.start, wanted.length),
        status_code=206,
        media_type=MEDIA_TYPE,
        headers={
            **headers,
            "Content-Length": str(wanted.length),
            "Content-Range": f"bytes {wanted.start}-{wanted.end}/{size}",
        },
    )
