"""Local-directory backend: files under one root; signed URLs point at the API, which checks them.

A signed URL is `<base_url>/<key>?expires=<unix>&sig=<hex HMAC-SHA256(secret, "<key>\\n<expires>")>`;
`verify` is what the serving route calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import mimetypes
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from storage.base import ByteStream, ObjectNotFound, StoredObject

CHUNK = 256 * 1024
INLINE_WRITE = 64 * 1024
"""A chunk this small is written on the event loop: a thread hop cost more than the write (issue #23)."""


def sign(secret: bytes, key: str, expires: int) -> str:
    return hmac.new(secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def verify(secret: bytes, key: str, expires: str | None, sig: str | None, *, now: float | None = None) -> bool:
    """True when `sig` is this instance's signature of `key` and `expires` is still in the future."""
    # isdigit() alone takes "²", which int() refuses.
    if not expires or not sig or not expires.isascii() or not expires.isdigit():
        return False
    if int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(sign(secret, key, int(expires)), sig)


class LocalStore:
    def __init__(self, root: Path, *, base_url: str, secret: bytes) -> None:
        self.root = root.resolve()
        self._root = str(self.root)
        self._base_url = base_url.rstrip("/")
        self._secret = secret

    def path_of(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ObjectNotFound(key)
        return path

    def _write_path(self, key: str) -> str:
        """Where a write of `key` goes: checked by its parts, not resolved on disk as `path_of` does for
        reads (a realpath of every component: ~50 µs a file, two files a job; issue #23). The keys we
        write are ours (storage.keys), so this refuses what they never contain: an absolute path, an
        empty, `.` or `..` part, a backslash or NUL."""
        parts = key.split("/")
        if not key or "\\" in key or "\0" in key or any(part in ("", ".", "..") for part in parts):
            raise ObjectNotFound(key)
        return os.path.join(self._root, key)

    async def put_stream(self, key: str, chunks: ByteStream, content_type: str) -> StoredObject:
        path = self._write_path(key)
        # Written beside the target, then renamed over it: a reader never sees half a file, and a
        # crashed upload leaves only a temp file, never a truncated object.
        directory, name = os.path.split(path)
        tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            with _create(tmp, directory) as out:
                async for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    if len(chunk) <= INLINE_WRITE:
                        out.write(chunk)  # into the page cache: cheaper than the hop to a thread
                    else:
                        await asyncio.to_thread(out.write, chunk)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return StoredObject(key, size, digest.hexdigest(), content_type)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        async def once() -> AsyncIterator[bytes]:
            yield data

        return await self.put_stream(key, once(), content_type)

    async def open(self, key: str) -> ByteStream:
        path = self.path_of(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return _read(path)

    async def exists(self, key: str) -> bool:
        try:
            return self.path_of(key).is_file()
        except ObjectNotFound:
            return False

    async def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)

    def signed_url(self, key: str, ttl_seconds: int, *, filename: str | None = None) -> str:
        expires = int(time.time()) + ttl_seconds
        query = {"expires": str(expires), "sig": sign(self._secret, key, expires)}
        return f"{self._base_url}/{quote(key)}?{urlencode(query)}"

    async def close(self) -> None:
        return None


def _create(path: str, directory: str) -> BinaryIO:
    """A new file at `path`, its directory made only when the first try says it is missing (a job's
    first file), not looked for before every file. On the event loop, as the small writes are: opening
    a file in the page cache costs less than a hop to a thread."""
    try:
        return open(path, "wb")
    except FileNotFoundError:
        os.makedirs(directory, exist_ok=True)
        return open(path, "wb")


def content_type_of(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


async def _read(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            yield chunk
