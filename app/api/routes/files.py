"""GET /blobs/{key}: the local storage backend's signed links (expiry + HMAC of the instance secret).

No API key: the signature is the permission, as with an S3 presigned URL. With the S3 backend the
links point at S3 and this route answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from app.api.deps import resources_of
from app.api.resources import BLOBS_PATH
from app.core.edge import is_clean_id
from app.core.errors import NotFound, PermissionDenied
from storage.local import LocalStore, content_type_of, verify


@get(f"{BLOBS_PATH}/{{key:path}}", operation_id="downloadBlob", include_in_schema=False)
async def download_blob(
    request: Request[Any, Any, Any],
    key: FromPath[str],
    expires: Annotated[str | None, QueryParameter(max_length=20)] = None,
    sig: Annotated[str | None, QueryParameter(max_length=200)] = None,
) -> Response[Any]:
    res = resources_of(request)
    store = res.store
    key = key.lstrip("/")
    if not isinstance(store, LocalStore):
        raise NotFound("Files are served by the object store, not by this API.", code="not_found")
    if not is_clean_id(key, 1000) or not verify(res.settings.resolved_secret_key(), key, expires, sig):
        raise PermissionDenied("This link is invalid or has expired.", code="invalid_signature")
    path = store.path_of(key)
    if not path.is_file():
        raise NotFound("No such file.", code="not_found")
    headers = {"content-length": str(path.stat().st_size), "cache-control": "private, max-age=300"}
    return Stream(await store.open(key), media_type=content_type_of(key), headers=headers)
