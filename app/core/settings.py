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
    database_connect_timeout_seconds: float = 5.0
    """PostgreSQL: longest wait for a new connection; past it the request answers 503."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_max_connections: int = 512
    """Connections per process to Redis; a burst beyond waits for a free one."""
    redis_pipeline_connections: int = 1
    """Connections per process of the admission's pipelining client (app/billing/limits/pipelined.py), each
    carrying every concurrent call; 0 sends admission through redis-py's pool like everything else."""
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
    invalid_key_limit: int = 20
    """Failed API-key lookups (unknown or revoked keys) a client address may cause per window and web
    process; past it the address gets 429 `too_many_invalid_keys` without a lookup (0 = off)."""
    invalid_key_window_seconds: float = 60.0
    catalog_refresh_seconds: float = 5.0

    default_rpm: int = 100
    """Requests per minute per key, unless the key, its account or its tier says otherwise (0 = off)."""
    default_rph: int = 1000
    default_tpm: int = 100_000
    default_max_streams: int = 10
    default_reads_per_minute: int = 600
    """GET requests (polling a job, listing) per minute per key: a separate, more generous limit."""
    limits_fail_open: bool = False
    """When Redis is unreachable: False answers 503; True lets free requests through unlimited.
    Paid requests always need Redis (their hold), so they get 503 either way."""
    stream_lease_ttl_seconds: int = 60
    chat_hold_ttl_seconds: int = 900
    default_max_output_tokens: int = 4096
    """The output cap sent upstream (and held for) when a request sets none and the model's price row
    has no `max_output_tokens`; lowered to what the balance affords."""
    thinking_budget_tokens: int = Field(default=2048, ge=1024, le=1_000_000)
    """Tokens of thinking added to the output cap of a `reasoning: true` request (Anthropic's
    `thinking.budget_tokens`, Gemini's `thinkingBudget`; held for like any output)."""
    min_useful_output_tokens: int = Field(default=16, ge=1)
    """A request without an output cap whose balance affords fewer tokens than this is refused (402)."""
    idempotency_ttl_hours: int = 24
    """How long an Idempotency-Key is remembered (at least 24 h)."""
    billing_reconcile_seconds: float = 30.0
    """How often expired holds are dropped and quiet accounts' Redis balances resynced from the ledger."""

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
    job_log_preview: bool = False
    """Also put each pending job-log record in Redis (pipelined, off the hot path) so that GET
    /v1/jobs/{id} finds a chat or embedding job from any web process before its row is written. Off:
    only the process that served the request finds it until then. Turn on with several web processes."""

    log_level: str = "INFO"
    log_json: bool = False

    metrics_enabled: bool = True
    """Serve Prometheus metrics at GET /metrics and count every API request (cheap: no lock, no I/O)."""
    metrics_token: SecretStr | None = None
    """Bearer token GET /metrics asks for. Empty: /metrics answers anyone in development and test, and is
    not served at all in production (env=production), where it would sit on the public API port."""
    overhead_header: bool = True
    """Send `x-heytoken-overhead-ms`: time spent in the gateway, excluding the upstream wait."""

    storage_url: str = ""
    """`s3://bucket[/prefix]` for S3, or a directory path for the local backend. Empty: `var_dir/storage`."""
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None

    extra_local_models: list[str] = Field(default_factory=list)

    # Media jobs (images and videos): see app/jobs/pipeline.py for how these shape a job's life.
    local_media_queue_seconds: float = 0.0
    """How long a local-provider media job pretends to wait in the upstream's queue."""
    local_media_render_seconds: float = 0.0
    """How long a local-provider media job pretends to render (progress rises over this time)."""
    local_media_tiny: bool = False
    """Make every local-provider file 16×16 (videos one frame a second), drawn once per shape and reused:
    for benchmarks of the queue."""
    job_poll_initial_seconds: float = 2.0
    """First delay between two polls of an upstream task; it grows with the task's age."""
    job_poll_max_seconds: float = 30.0
    """Longest delay between two polls (also caps the back-off after upstream errors)."""
    job_step_timeout_seconds: float = 60.0
    """Longest one submit or poll request to the upstream may take (the httpx timeout)."""
    job_max_attempts: int = 5
    """Failed submit or store steps (upstream 5xx, network, storage) before the job fails."""
    image_deadline_seconds: float = 600.0
    """An image job not completed this long after creation fails with error.code `timeout`."""
    video_deadline_seconds: float = 3600.0
    """A video job not completed this long after creation fails with error.code `timeout`."""
    image_wait_seconds: float = 120.0
    """How long POST /v1/images/generations waits for its job before answering 504 (the job goes on)."""
    media_retention_seconds: int = 7 * 24 * 3600
    """`expires_at` of a completed job: how long its files are promised to stay downloadable."""
    signed_url_ttl_seconds: int = 3600
    """Lifetime of the signed links to results (302 of /content, `url` of image results)."""
    client_poll_after_ms: int = 2000
    """`openai-poll-after-ms` sent with an unfinished video: how often the SDK's poll() asks."""
    input_reference_max_bytes: int = 8 * 1024 * 1024
    """Largest accepted `input_reference` upload (larger: 413)."""
    reconcile_interval_seconds: float | None = None
    """How often a worker looks for jobs whose message was lost (overdue) or whose deadline passed;
    unset: half of `step_lease_seconds` (see `reconcile_every`)."""
    reconcile_grace_seconds: float | None = None
    """How overdue a job's next step must be before the reconciler sends it again; unset: half of
    `step_lease_seconds` (see `reconcile_grace`)."""
    broker_heartbeat_timeout_ms: int = 30_000
    """Dramatiq: a worker silent this long counts as dead and its unacked messages may be requeued."""
    broker_maintenance_chance: int = 10_000
    """Dramatiq: in a million broker calls, how many also requeue dead workers' messages."""
    broker_idle_poll_ms: int = 100
    """With `broker_wake` off, Dramatiq's polling: the longest pause between two looks at an empty queue
    (Dramatiq's own default is 1,000 ms, which a job arriving at a quiet worker may wait in full)."""
    broker_wake_wait_ms: int = 1_000
    """With `broker_wake` on: the longest an idle consumer waits on its wake list, and an idle worker
    thread on its work queue, before looking again. A send ends the wait at once, and so does a delayed
    message coming due, so a longer wait costs no latency; it bounds how long a stopping worker takes to
    notice, and each look costs the idle worker a few Redis commands (issue #23)."""

    # Webhooks: see app/webhooks/delivery.py (schedule) and app/core/ssrf.py (where they may go).
    webhook_retry_schedule: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0]
    )
    """Seconds between a failed attempt and the next (±10 % jitter); the first attempt is immediate.
    The default is Standard Webhooks' example: 10 attempts over about 75 hours."""
    webhook_timeout_seconds: float = 15.0
    """Whole budget of one delivery attempt: resolve, connect, send, read the answer."""
    webhook_secret_overlap_seconds: int = 86_400
    """After a rotation, the old signing secret keeps signing (beside the new one) this long."""
    webhook_allow_http: bool = False
    """Accept plain-http webhook URLs (local development only)."""
    webhook_allowed_ports: list[int] = Field(default_factory=lambda: [80, 443, 8443])
    """Ports a webhook URL may name (receivers in a trusted network may use any)."""
    webhook_trusted_networks: list[str] = Field(default_factory=list)
    """CIDRs that webhooks may reach although they are not public (internal receivers), e.g.
    `["10.20.0.0/16"]`. Everything else non-public is refused."""

    # Issue #22, the response cache (app/cache/, docs/caching.md).
    cache_redis_url: str = ""
    """The cache's own Redis: empty means the server of `redis_url` with database index 1, so that
    eviction under `maxmemory` (give it `allkeys-lru`) can only ever take cache entries, never a
    limit counter or a hold. A separate server (its own URL) is the production choice."""
    cache_default_ttl_seconds: int = 3600
    """How long an entry lives when the request (`x-heytoken-cache: on`) names no `ttl`."""
    cache_max_ttl_seconds: int = 7 * 86_400
    """The longest TTL a request, a key, an account or a model policy may ask for."""
    cache_max_entry_bytes: int = 1_048_576
    """Answers larger than this (encoded) are served but not stored."""
    cache_hit_price_bp: int = 0
    """What a cache hit costs, in basis points of what the answer cost when it was computed
    (0: free, 10000: the full price). A model policy may set its own (`price_bp`)."""
    cache_embeddings_by_default: bool = False
    """Cache every embeddings request without an opt-in (embedding models are deterministic)."""
    cache_models: dict[str, dict[str, int | bool]] = Field(default_factory=dict)
    """The operator's per-model policy, e.g. `{"text-embedding-3-small": {"default": true, "ttl": 86400,
    "shared": true, "price_bp": 1000}}`: `default` caches without an opt-in, `enabled: false` never
    caches, `shared` lets every account read the same entries, `ttl` and `price_bp` as above."""
    # -- realtime voice (issue #19) ------------------------------------------------------------------
    realtime_idle_timeout_seconds: float = 300.0
    """A realtime session with no frame from the client this long is closed (code 1000, `idle_timeout`)."""
    realtime_max_session_seconds: float = 1800.0
    """A realtime session is closed after this long whatever it does (code 1000, `max_duration`)."""
    realtime_max_output_tokens: int = 4096
    """Output tokens one realtime response may produce: sent upstream as `max_output_tokens` and held for."""
    realtime_audio_tokens_per_second: int = 50
    """Upper bound of the tokens one second of input audio costs, for the rolling hold of a response."""
    realtime_connect_timeout_seconds: float = 10.0
    """Opening one upstream realtime socket (then the next channel is tried)."""
    realtime_client_secret_max_seconds: int = 600
    """Longest life of a client secret from POST /v1/realtime/client_secrets (default 60 s if not asked)."""
    realtime_max_frame_bytes: int = 16 * 1024 * 1024
    """Largest frame a client or upstream may send on a realtime socket."""
    # The console (issue #20): the web dashboard under /console (app/console).
    console_enabled: bool = True
    """Serve the web console under /console (and redirect / to it)."""
    console_session_hours: float = 12.0
    """A console sign-in lasts this long."""
    console_signin_limit: int = 5
    """Failed console sign-ins per e-mail address (and per client address) per window; then 429."""
    console_signin_window_seconds: int = 300
    stripe_secret_key: SecretStr | None = None
    """Stripe API secret key (`sk_…`). Empty: top-up by card is off."""
    stripe_webhook_secret: SecretStr | None = None
    """Signing secret (`whsec_…`) of the Stripe webhook endpoint `/console/stripe/webhook`."""
    stripe_api_base: str = "https://api.stripe.com"
    """Where the Stripe API answers (a local mock in the tests)."""
    stripe_currency: str = "usd"
    stripe_min_topup_cents: int = 500
    stripe_max_topup_cents: int = 1_000_000

    # Operations (issue 18): leases of running steps, renewed by a heartbeat (app/core/lease.py).
    step_lease_seconds: float = 6.0
    """Lease of a running job step or webhook attempt. The worker running it renews it every third of
    this; a worker that died loses it this long after its last renewal, and the reconciler hands the
    step to another worker within `reconcile_every() + reconcile_grace()` more."""

    def reconcile_every(self) -> float:
        """The reconciler's period: set, or half a step lease (a dead worker's step waits no longer)."""
        return self.reconcile_interval_seconds or self.step_lease_seconds / 2

    def reconcile_grace(self) -> float:
        """How overdue a step is before it is re-sent: set (0 allowed), or half a step lease."""
        grace = self.reconcile_grace_seconds
        return self.step_lease_seconds / 2 if grace is None else grace

    # -- issue #21: media vendors and their callbacks --
    callback_base_url: str = ""
    """The URL media vendors reach the gateway at for job callbacks (empty: `public_base_url`)."""
    callback_max_age_seconds: int = 300
    """A signed vendor callback whose timestamp is further than this from our clock is refused."""
    fal_jwks_url: str = "https://rest.alpha.fal.ai/.well-known/jwks.json"
    """fal's webhook signing keys (ED25519, JWKS), fetched by the web process and cached for a day."""
    reference_link_ttl_seconds: int = 3600
    """Lifetime of the signed link to an uploaded `input_reference` given to vendors that fetch it."""

    # Issue #23: the job log's retention (app/jobs/retention.py).
    job_retention_days: int = Field(default=30, ge=0)
    """Chat and embedding job rows older than this many days are removed (0: kept forever). Media jobs
    stay as long as their files; the ledger and the usage rollups (GET /v1/usage) are never removed."""
    job_retention_batch: int = Field(default=500, ge=1, le=10_000)
    """Rows removed per transaction: small, so the job log's writer never waits long behind one (on
    SQLite at most 100, as the statement runs on the web process's event loop)."""
    job_retention_interval_seconds: float = Field(default=60.0, gt=0)
    """How often each web process looks for expired rows (while it finds full batches, it goes on at once)."""

    # Issue #23: cheaper jobs (app/core/wake.py).
    broker_wake: bool = True
    """Every send also pushes a token on its queue's wake list, and an idle worker's consumer waits on
    that list (BLPOP) instead of sleeping between polls: a job sent to an idle worker starts at once.
    Off: Dramatiq's polling, every `broker_idle_poll_ms` at most."""

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
