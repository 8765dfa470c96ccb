"""Backend selection from a URL. Called at start-up (web lifespan, worker boot), never at import:
boto3 clients made before moto's mock starts would talk to real AWS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from storage.base import ObjectStore
from storage.local import LocalStore


@dataclass(frozen=True, slots=True)
class S3Options:
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None


def open_store(
    url: str, *, default_dir: Path, signing_base_url: str, secret: bytes, s3: S3Options | None = None
) -> ObjectStore:
    """`s3://bucket[/prefix]` → S3Store; a path (or empty: `default_dir`) → LocalStore whose signed URLs
    start with `signing_base_url` and are signed with `secret`."""
    if url.startswith("s3://"):
        # Imported here: a web process on local storage never loads the S3 backend (issue #23, memory).
        from storage.s3 import S3Store

        parsed = urlparse(url)
        if not parsed.netloc:
            raise ValueError(f"storage URL {url!r} names no bucket")
        return S3Store(_s3_client(s3 or S3Options()), parsed.netloc, parsed.path)
    root = Path(url) if url else default_dir
    root.mkdir(parents=True, exist_ok=True)
    return LocalStore(root, base_url=signing_base_url, secret=secret)


def _s3_client(options: S3Options) -> object:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=5,
        read_timeout=60,
        signature_version="s3v4",
        # Path-style keeps presigned URLs valid on custom endpoints without wildcard DNS (MinIO, moto).
        s3={"addressing_style": "path" if options.endpoint_url else "auto"},
    )
    return boto3.client(
        "s3",
        endpoint_url=options.endpoint_url,
        region_name=options.region,
        aws_access_key_id=options.access_key_id,
        aws_secret_access_key=options.secret_access_key,
        config=config,
    )
