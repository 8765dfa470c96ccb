"""The interface every backend implements, and what a stored object is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

ByteStream = AsyncIterator[bytes]


class ObjectNotFound(Exception):
    pass


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    bytes: int
    sha256: str
    content_type: str

    def as_dict(self) -> dict[str, str | int]:
        return {"key": self.key, "bytes": self.bytes, "sha256": self.sha256, "content_type": self.content_type}


class ObjectStore(Protocol):
    """Writes are whole-object and idempotent: putting the same key again replaces the object, so a
    retried upload after a crash leaves one object, never a half-written one."""

    async def put_stream(self, key: str, chunks: ByteStream, content_type: str) -> StoredObject: ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject: ...

    async def open(self, key: str) -> ByteStream:
        """The object's bytes, in chunks. Raises ObjectNotFound."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        ...

    def signed_url(self, key: str, ttl_seconds: int, *, filename: str | None = None) -> str:
        """A URL anyone holding it may GET until it expires."""
        ...

    async def close(self) -> None: ...


async def read_all(store: ObjectStore, key: str) -> bytes:
    out = bytearray()
    async for chunk in await store.open(key):
        out += chunk
    return bytes(out)
