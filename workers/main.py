"""`dramatiq workers.main`: the worker process's entry point (see the Procfile).

Importing this module sets Dramatiq's global broker — the one import-time side effect we accept,
because actors bind to the global broker when they are declared — and then declares the actors.
Connections are opened later, at worker boot (workers/middleware.py).
"""

from __future__ import annotations

import dramatiq

from app.core.logging import configure_logging
from app.core.settings import get_settings
from app.webhooks.events import install as install_job_events
from workers.broker import build_broker
from workers.middleware import WorkerResources, install

settings = get_settings()
configure_logging(settings)
install_job_events()  # a job's transitions make their webhook events (app/jobs/events.py)
resources = WorkerResources(settings)
install(resources)
broker = build_broker(settings, resources)
dramatiq.set_broker(broker)

from workers import jobs, webhooks  # noqa: E402  (actors must be declared after set_broker)

__all__ = ["broker", "jobs", "webhooks"]
