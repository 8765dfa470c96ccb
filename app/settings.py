"""One settings class for every process. Every field is a `HEYTOKEN_<NAME>` env var (or a `.env` line)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEYTOKEN_", env_file=".env", env_ignore_empty=True, extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    var_dir: Path = Path("./var")
    """Where the embedded defaults keep their state (SQLite file, local storage, generated secret)."""

    database_url: str = ""
    """SQLAlchemy async URL. Empty: a SQLite file under `var_dir`."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "ht:"
    """Prefix of every Redis key the gateway writes (lets several deployments or test runs share one Redis)."""

    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = ""
    """Base URL clients reach the API at (signed local-storage links use it). Empty: http://host:port."""

    secret_key: SecretStr | None = None
    """Encrypts channel secrets and signs local-storage URLs. Empty: generated once into `var_dir`."""

    admin_token: SecretStr | None = None
    """Bearer token of the admin API under /admin (not an sk-ht- key). Empty: the admin API answers 404."""

    local_provider: bool = True
    """Serve the built-in `local` provider's models (no network, deterministic)."""
    local_token_delay_ms: float = 0.0
    """Delay between streamed tokens of the local provider (0 = as fast as possible)."""

    max_body_bytes: int = 10 * 1024 * 1024
    key_cache_ttl_seconds: float = 5.0
    catalog_refresh_seconds: float = 5.0

    upstream_connect_timeout: float = 5.0
    upstream_first_byte_timeout: float = 60.0
    """Until the first streamed event (or, without streaming, the response headers); then fail over."""
    upstream_idle_timeout: float = 60.0
    """Longest silence between two streamed events."""
    upstream_total_timeout: float = 60.0
    """A whole non-streaming call (the docs advise clients to wait 30-60 s)."""
    upstream_stream_total_timeout: float = 600.0
    """A whole stream, first byte to last."""
    upstream_max_connections: int = 1000
    upstream_max_attempts: int = 3
    """Channels tried per request (each at most once) before the request fails."""
    upstream_retry_backoff: float = 0.1
    """Base of the jittered backoff before the next channel: base x 2^n x U(0.75, 1), at most 2 s."""

    cooldown_failures: int = 3
    """Failures of one channel within `cooldown_window_seconds` that open its cooldown."""
    cooldown_window_seconds: float = 60.0
    cooldown_seconds: float = 5.0
    """First cooldown; doubled after each failed trial request, up to `cooldown_max_seconds`."""
    cooldown_max_seconds: float = 60.0
    cooldown_sync_seconds: float = 1.0
    """How often each process reads the shared cooldown board from Redis (never per request)."""

    job_log_flush_ms: int = 50
    job_log_batch_size: int = 500
    job_log_max_pending: int = 100_000

    log_level: str = "INFO"
    log_json: bool = False

    storage_url: str = ""
    """`s3://bucket[/prefix]` for S3, or a directory path for the local backend. Empty: `var_dir/storage`."""
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None

    extra_local_models: list[str] = Field(default_factory=list)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'heytoken.db').as_posix()}"

    def resolved_public_base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    def resolved_secret_key(self) -> bytes:
        """The instance secret. Generated into `var_dir/secret.key` on first use when not configured,
        so a fresh machine needs no setup and restarts keep working links and readable channel secrets."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.var_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip().encode()

    def is_sqlite(self) -> bool:
        return self.resolved_database_url().startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
