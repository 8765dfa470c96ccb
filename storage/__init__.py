"""Object storage: one small interface (`ObjectStore`), a local-directory backend and an S3 backend.

This package knows nothing of the app (a test guards it): callers pass plain values in. `open_store`
picks the backend from a URL: `s3://bucket[/prefix]` → S3, anything else → a local directory.
"""

from storage.base import ByteStream, ObjectNotFound, ObjectStore, StoredObject
from storage.factory import S3Options, open_store
from storage.keys import object_key

__all__ = ["ByteStream", "ObjectNotFound", "ObjectStore", "S3Options", "StoredObject", "object_key", "open_store"]
