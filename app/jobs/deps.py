"""What the job steps need, in a module of its own: the steps (pipeline.py) and their outcomes
(results.py) both name it, and results.py must not import pipeline.py back."""

from __future__ import annotations

from dataclasses import dataclass

from app.channels.catalog import CatalogCache
from app.core.db import SessionMaker
from app.core.queue import Sender
from app.core.settings import Settings
from app.providers.base import MediaProvider
from app.providers.media_registry import MediaKey
from storage import ObjectStore


@dataclass(slots=True)
class JobDeps:
    """What the steps need, opened once per worker process (workers/middleware.py)."""

    settings: Settings
    sessionmaker: SessionMaker
    sender: Sender
    store: ObjectStore
    catalog: CatalogCache
    media: dict[MediaKey, MediaProvider]
