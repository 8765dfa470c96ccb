"""Typed query and path parameters. Litestar enforces (and documents) the constraints of its own
`QueryParameter`/`PathParameter` markers, not a msgspec `Meta` inside the type, so the constraints of
app.core.edge's types are restated here."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar.params import HeaderParameter, PathParameter, QueryParameter

from app.core.edge import INT64_MAX, NO_NUL

ID_PATTERN = r"^[A-Za-z0-9_-]+$"

IdPath = Annotated[str, PathParameter(min_length=1, max_length=100, pattern=ID_PATTERN)]
"""One of our ids (`video_01J…`): a malformed one answers the route's 404 (app.api.api_edge.ID_PARAMS)."""
IdQuery = Annotated[str | None, QueryParameter(min_length=1, max_length=100, pattern=ID_PATTERN)]
"""An id as a filter or a cursor (`after`)."""
NamePath = Annotated[str, PathParameter(min_length=1, max_length=200, pattern=NO_NUL)]
"""A name or an id (admin routes take either)."""
ModelPath = Annotated[str, PathParameter(min_length=1, max_length=300, pattern=NO_NUL)]
"""A model name in a path (`/v1/models/openai/gpt-4o`: it may hold slashes)."""
NameQuery = Annotated[str | None, QueryParameter(min_length=1, max_length=200, pattern=NO_NUL)]
FormQuery = Annotated[str | None, QueryParameter(max_length=200, pattern=NO_NUL)]
"""A console page's filter or search, as its GET form sends it (empty when left blank)."""
PageNumber = Annotated[int, QueryParameter(ge=1, le=10_000)]
"""A console page's page number."""
PageLimit = Annotated[int, QueryParameter(ge=1, le=100, description="How many items, 1 to 100.")]
Order = Annotated[Literal["asc", "desc"], QueryParameter(description="Sort order by creation time.")]
Cursor64 = Annotated[int | None, QueryParameter(ge=0, le=INT64_MAX, description="Items with a smaller id.")]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description="Repeat the request with the same key and body: the first answer again, one job (24 h).",
    ),
]
"""Documented here, checked by app.idempotency (400 naming `Idempotency-Key`)."""
Prefer = Annotated[
    str | None,
    HeaderParameter(name="Prefer", description="`respond-async`: answer 202 with the job at once, not the result."),
]
