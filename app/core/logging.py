"""Logging for every process: one line per event, dotted event names, nothing per request by default.

Litestar's default logging config would set the root logger to INFO, which makes httpx log a line per
upstream request (~10 % of the hot path); so the app passes `logging_config=None` and this module
configures logging once, with httpx and friends at WARNING.
"""

from __future__ import annotations

import logging
import sys

from app.core.settings import Settings

QUIET = ("httpx", "httpcore", "aiohttp.access", "botocore", "boto3", "urllib3", "asyncio", "aiosqlite")


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    if settings.log_json:
        fmt = '{"ts":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","event":%(message)r}'
    else:
        fmt = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn's own records (its errors; each connection at WEB_LOG_LEVEL=trace) in the same format,
    # with a timestamp, instead of through the handler uvicorn installed (level and message only).
    server = logging.getLogger("uvicorn")
    server.handlers.clear()
    server.propagate = True
