"""A page of a list, as OpenAI's list endpoints answer it (and the SDKs' paginators read it)."""

from __future__ import annotations

from typing import Any


def list_page(data: list[dict[str, Any]], *, has_more: bool) -> dict[str, Any]:
    """`data` is the page (already cut to its limit); `has_more` says a next page exists, which the
    caller learns by asking for one item more than the limit."""
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return {"object": "list", "data": data, "has_more": has_more, "first_id": first, "last_id": last}
