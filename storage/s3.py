"""S3 backend on boto3 (AWS or any S3-compatible endpoint: MinIO, R2, moto…).

boto3 is synchronous, so each call runs in a thread. Streams are uploaded as they arrive: small objects
with one PUT, larger ones as a multipart upload in `PART_SIZE` parts, so memory stays bounded by one
part whatever the size of the video.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

from storage.base import ByteStream, ObjectNotFound, StoredObject

PART_SIZE = 8 * 1024 * 1024
"""S3 wants parts of at least 5 MiB (except the last)."""
CHUNK = 256 * 1024


class S3Store:
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self.bucket = bucket
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def _key(self, key: str) -> str:
        return f"{self._prefix}{key}"

    async def put_stream(self, key: str, chunks: ByteStream, content_type: str) -> StoredObject:
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                if len(buffer) >= PART_SIZE:
                    if upload_id is None:
                        upload_id = await self._start_multipart(key, content_type)
                    parts.append(await self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
            if upload_id is None:
                await asyncio.to_thread(
                    self._client.put_object,
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Body=bytes(buffer),
                    ContentType=content_type,
                )
            else:
                if buffer:
                    parts.append(await self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
                await asyncio.to_thread(
                    self._client.complete_multipart_upload,
                    Bucket=self.bucket,
                    Key=self._key(key),
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
                upload_id = None
        finally:
            if upload_id is not None:
                # A failed upload must not leave invisible parts that S3 bills for.
                await asyncio.to_thread(
                    self._client.abort_multipart_upload, Bucket=self.bucket, Key=self._key(key), UploadId=upload_id
                )
        return StoredObject(key, size, digest.hexdigest(), content_type)

    async def _start_multipart(self, key: str, content_type: str) -> str:
        created = await asyncio.to_thread(
            self._client.create_multipart_upload, Bucket=self.bucket, Key=self._key(key), ContentType=content_type
        )
        upload_id: str = created["UploadId"]
        return upload_id

    async def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        answer = await asyncio.to_thread(
            self._client.upload_part,
            Bucket=self.bucket,
            Key=self._key(key),
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        async def once() -> AsyncIterator[bytes]:
            yield data

        return await self.put_stream(key, once(), content_type)

    async def open(self, key: str) -> ByteStream:
        try:
            answer = await asyncio.to_thread(self._client.get_object, Bucket=self.bucket, Key=self._key(key))
        except self._client.exceptions.NoSuchKey as exc:
            raise ObjectNotFound(key) from exc
        return _read(answer["Body"])

    async def exists(self, key: str) -> bool:
        try:
            await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=self._key(key))
        except self._client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=self._key(key))

    def signed_url(self, key: str, ttl_seconds: int, *, filename: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if filename:
            params["ResponseContentDisposition"] = f'inline; filename="{filename}"'
        url: str = self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_seconds)
        return url

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)


async def _read(body: Any) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(body.read, CHUNK):
            yield chunk
    finally:
        body.close()
