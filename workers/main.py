"""`dramatiq workers.main`: the worker process's entry point (see the Procfile).

Importing this module sets Dramatiq's global broker — the one import-time side effect we accept,
because actors bind to the global broker when they are declared — and then declares the actors.
Connections are opened later, at worker boot (workers/middleware.py).
"""

from __future__ import annotations

import dramatiq

from app.logging import configure_logging
from app.settings import get_settings
from workers.broker import build_broker
from workers.middleware import WorkerResources, install

settings = get_settings()
configure_logging(settings)
resources = WorkerResources(settings)
install(resources)
broker = build_broker(settings, resources)
dramatiq.set_broker(broker)

from workers import jobs, webhooks  # noqa: E402  (actors must be declared after set_broker)

__all__ = ["broker", "jobs", "webhooks"]
