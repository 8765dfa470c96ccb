"""The cache key: the account (or `shared`), the kind, the model and every field of the request that
can change the answer. `stream`, `stream_options` and `user` do not: a streamed and a whole answer
share one entry, and so do two end users of one application."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

IGNORED = frozenset({"stream", "stream_options", "user"})
_encode = msgspec.json.Encoder(order="sorted").encode


def entry_key(prefix: str, scope: str, kind: str, body: dict[str, Any]) -> str:
    """`scope` is the account id, or `shared` for a model whose entries every account reads."""
    normal = {k: v for k, v in body.items() if k not in IGNORED}
    digest = hashlib.sha256(_encode(normal)).hexdigest()
    return f"{prefix}cache:{scope}:{kind}:{digest}"


def account_pattern(prefix: str, account_id: str) -> str:
    return f"{prefix}cache:{account_id}:*"
