"""Observability cheap enough to stay on under load: the `x-heytoken-overhead-ms` header and /metrics.

Every API request gets a `RequestTiming` (a context variable) from the middleware; the upstream
transport adds the time spent waiting on the upstream to it, and the job recorder tags it with the
model and channel. Counters are plain dicts and lists updated in place (one event loop per process,
so no lock); the Prometheus text is built only when /metrics is scraped.
"""
