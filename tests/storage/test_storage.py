"""Both storage backends behind the one interface: local directory (signed links) and S3 (moto)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import boto3
import httpx
import pytest
from moto import mock_aws

from storage import S3Options, object_key, open_store
from storage.base import ObjectNotFound, ObjectStore, read_all
from storage.local import LocalStore, verify
from storage.s3 import PART_SIZE


async def chunks(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def roundtrip(store: ObjectStore, data: bytes) -> None:
    key = object_key("video_TEST", "video.mp4")
    stored = await store.put_stream(key, chunks(data), "video/mp4")
    assert (stored.bytes, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    again = await store.put_stream(key, chunks(data), "video/mp4")  # a retried upload replaces, never adds
    assert again == stored
    assert await read_all(store, key) == data and await store.exists(key)
    await store.delete(key)
    await store.delete(key)
    assert not await store.exists(key)


async def test_local_store_and_its_signed_links(tmp_path: Path) -> None:
    store = open_store("", default_dir=tmp_path / "s", signing_base_url="http://h/blobs", secret=b"secret")
    assert isinstance(store, LocalStore)
    await roundtrip(store, b"abc" * 100_000)
    url = urlparse(store.signed_url("media/x/video.mp4", 60))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == "/blobs/media/x/video.mp4"
    assert verify(b"secret", "media/x/video.mp4", query["expires"], query["sig"])
    assert not verify(b"secret", "media/x/other.mp4", query["expires"], query["sig"])
    assert not verify(b"other", "media/x/video.mp4", query["expires"], query["sig"])
    assert not verify(b"secret", "media/x/video.mp4", query["expires"], query["sig"], now=time.time() + 120)
    with pytest.raises(ValueError, match="unsafe"):
        object_key("../etc", "passwd")


async def test_s3_store_single_put_and_multipart(tmp_path: Path) -> None:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="media")
        options = S3Options(region="us-east-1")
        store = open_store("s3://media/results", default_dir=tmp_path, signing_base_url="", secret=b"", s3=options)
        await roundtrip(store, b"small")
        await roundtrip(store, b"x" * (PART_SIZE * 2 + 123))  # three parts
        key = object_key("img_TEST", "image-0.png")
        await store.put_bytes(key, b"png", "image/png")
        url = store.signed_url(key, 300)
        assert "results/media/img_TEST/image-0.png?" in url and "X-Amz-Signature" in url
        head = boto3.client("s3", region_name="us-east-1").head_object(Bucket="media", Key=f"results/{key}")
        assert head["ContentType"] == "image/png"
        await store.close()


async def test_signed_blob_route(client, tenant) -> None:
    from app.api.resources import create_object_store

    settings = client.app.state.resources.settings
    store = create_object_store(settings)
    key = object_key("img_ROUTE", "image-0.png")
    await store.put_bytes(key, b"\x89PNG data", "image/png")
    url = urlparse(store.signed_url(key, 60))
    good = await client.get(f"{url.path}?{url.query}")
    assert good.status_code == 200 and good.content == b"\x89PNG data" and good.headers["content-type"] == "image/png"
    bad = await client.get(f"{url.path}?expires=1&sig=00")
    assert bad.status_code == 403 and bad.json()["error"]["code"] == "invalid_signature"
    assert isinstance(httpx.URL(store.signed_url(key, 60)), httpx.URL)


async def test_a_local_write_stays_under_its_root(tmp_path: Path) -> None:
    """Writes check the key by its parts (no realpath per file, issue #23): nothing outside the root,
    nothing through an empty, `.` or `..` part."""
    store = LocalStore(tmp_path / "root", base_url="http://h/blobs", secret=b"s")
    refused = ["../outside", "media/../../outside", "/tmp/outside", "media//x", "media/./x", "", "a\\..\\b", "a\0b"]
    for key in refused:
        with pytest.raises(ObjectNotFound):
            await store.put_stream(key, chunks(b"x"), "text/plain")
    assert not (tmp_path / "outside").exists()
    stored = await store.put_stream(object_key("video_A", "video.mp4"), chunks(b"abc"), "video/mp4")
    assert stored.bytes == 3 and (tmp_path / "root" / "media" / "video_A" / "video.mp4").read_bytes() == b"abc"
    assert [p.name for p in (tmp_path / "root" / "media" / "video_A").iterdir()] == ["video.mp4"]  # no temp file left
