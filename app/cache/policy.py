"""Whether a request is cached, for how long, and at what price: the request's headers, then the
operator's model policy, then the settings.

Decided from values the edge already read (the fast path picks the two headers out of the scope in its
one pass over them), so a request without an opt-in pays a few attribute reads and no Redis call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.settings import Settings


@dataclass(slots=True, frozen=True)
class CacheMode:
    ttl: int
    """Seconds a stored answer lives."""
    read: bool = True
    """False for `Cache-Control: no-cache`: go upstream, then store the fresh answer."""
    store: bool = True
    """False for `Cache-Control: no-store`: serve from the cache, never write to it."""
    shared: bool = False
    """The model's entries are read by every account (an operator's choice per model)."""
    price_bp: int = 0
    """A hit's price, in basis points of what the answer cost when it was computed."""


class CachePolicy:
    """The settings' cache policy, read once at start-up."""

    def __init__(self, settings: Settings) -> None:
        self.default_ttl = settings.cache_default_ttl_seconds
        self.max_ttl = settings.cache_max_ttl_seconds
        self.price_bp = settings.cache_hit_price_bp
        self.embeddings_default = settings.cache_embeddings_by_default
        self.models = settings.cache_models
        defaults = any(policy.get("default") for policy in self.models.values())
        self.chat_defaults = defaults
        """Some model is cached without an opt-in: every chat request must look (else only opt-ins)."""
        self.embedding_defaults = defaults or self.embeddings_default

    def mode(
        self, model: str, header: bytes | None, control: bytes | None, *, embeddings: bool, default_ttl: int = 0
    ) -> CacheMode | None:
        """The request's cache mode, or None: not cached. `default_ttl` is the key's or the account's
        default (0: none): the request's header overrides it, and it overrides the model's default."""
        policy = self.models.get(model, {})
        if policy.get("enabled", True) is False:
            return None
        on, ttl = _parse_header(header)
        if on is None and default_ttl:
            on, ttl = True, default_ttl
        if on is None:
            on = bool(policy.get("default", embeddings and self.embeddings_default))
        if not on:
            return None
        read = store = True
        if control is not None:
            directives = {part.strip().lower() for part in control.decode("latin-1").split(",")}
            read = "no-cache" not in directives
            store = "no-store" not in directives
        ttl = ttl or int(policy.get("ttl", 0)) or self.default_ttl
        return CacheMode(
            ttl=max(1, min(ttl, self.max_ttl)),
            read=read,
            store=store,
            shared=bool(policy.get("shared", False)),
            price_bp=max(0, min(int(policy.get("price_bp", self.price_bp)), 10_000)),
        )


def _parse_header(header: bytes | None) -> tuple[bool | None, int]:
    """`x-heytoken-cache: on`, `on; ttl=600`, `ttl=600` (on), `off` → (on?, ttl or 0)."""
    if header is None:
        return None, 0
    on: bool | None = None
    ttl = 0
    for part in header.decode("latin-1").replace(",", ";").split(";"):
        word = part.strip().lower()
        if word in ("on", "true", "1", "yes"):
            on = True
        elif word in ("off", "false", "0", "no"):
            on = False
        elif word.startswith("ttl="):
            try:
                ttl = max(0, int(word[4:]))
            except ValueError:
                ttl = 0
            if on is None:
                on = True
    return on, ttl
