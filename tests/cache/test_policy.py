"""Who decides whether a request is cached: the request's headers, the operator's model policy, the settings."""

from __future__ import annotations

from app.cache.keys import entry_key
from app.cache.policy import CacheMode, CachePolicy
from app.cache.store import cache_redis_url
from app.core.settings import Settings


def policy(**overrides: object) -> CachePolicy:
    return CachePolicy(Settings(_env_file=None, **overrides))  # type: ignore[call-arg, arg-type]


def test_the_request_opts_in_with_a_ttl_and_cache_control_refines_it() -> None:
    p = policy(cache_default_ttl_seconds=60, cache_max_ttl_seconds=600)
    assert p.mode("m", None, None, embeddings=False) is None
    assert p.mode("m", b"on", None, embeddings=False) == CacheMode(ttl=60)
    assert p.mode("m", b"on; ttl=300", None, embeddings=False) == CacheMode(ttl=300)
    assert p.mode("m", b"ttl=100000", None, embeddings=False) == CacheMode(ttl=600)
    assert p.mode("m", b"off", None, embeddings=False) is None
    refresh = p.mode("m", b"on", b"no-cache, no-store", embeddings=False)
    assert refresh is not None and not refresh.read and not refresh.store
    assert p.mode("m", None, b"no-cache", embeddings=False) is None  # Cache-Control alone opts nobody in


def test_the_operator_policy_per_model() -> None:
    p = policy(
        cache_hit_price_bp=500,
        cache_models={
            "emb": {"default": True, "shared": True, "ttl": 86400, "price_bp": 1000},
            "never": {"enabled": False},
        },
    )
    assert p.chat_defaults and p.embedding_defaults
    assert p.mode("emb", None, None, embeddings=True) == CacheMode(ttl=86400, shared=True, price_bp=1000)
    assert p.mode("emb", b"off", None, embeddings=True) is None
    assert p.mode("never", b"on", None, embeddings=False) is None
    assert p.mode("other", b"on", None, embeddings=False) == CacheMode(ttl=3600, price_bp=500)
    assert not policy().chat_defaults and not policy().embedding_defaults
    everything = policy(cache_embeddings_by_default=True)
    assert everything.mode("any", None, None, embeddings=True) is not None
    assert everything.mode("any", None, None, embeddings=False) is None


def test_the_key_ignores_stream_and_user_but_not_what_changes_the_answer() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    key = entry_key("p:", "acct", "chat", body)
    assert entry_key("p:", "acct", "chat", {**body, "stream": True, "stream_options": {}, "user": "u"}) == key
    assert entry_key("p:", "acct", "chat", dict(reversed(body.items()))) == key
    assert entry_key("p:", "acct", "chat", {**body, "temperature": 1}) != key
    assert entry_key("p:", "other", "chat", body) != key
    assert entry_key("p:", "acct", "embeddings", body) != key


def test_the_cache_has_its_own_redis_database_by_default() -> None:
    assert cache_redis_url(Settings(_env_file=None, redis_url="redis://h:1/0")) == "redis://h:1/1"  # type: ignore[call-arg]
    assert cache_redis_url(Settings(_env_file=None, redis_url="redis://h:1/1")) == "redis://h:1/0"  # type: ignore[call-arg]
    assert cache_redis_url(Settings(_env_file=None, redis_url="redis://h:1")) == "redis://h:1/1"  # type: ignore[call-arg]
    given = Settings(_env_file=None, cache_redis_url="redis://cache:6380/0")  # type: ignore[call-arg]
    assert cache_redis_url(given) == "redis://cache:6380/0"
