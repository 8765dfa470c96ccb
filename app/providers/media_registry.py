"""(Provider type, job kind) → media adapter instance, built once per worker process around the shared
httpx client (workers/middleware.py)."""

from __future__ import annotations

import httpx

from app.channels.models import ProviderType
from app.core.settings import Settings
from app.providers.base import MediaProvider
from app.providers.bfl import BflProvider
from app.providers.fal import FalProvider
from app.providers.kling import KlingProvider
from app.providers.local_media import LocalMediaProvider
from app.providers.midjourney import MidjourneyProvider
from app.providers.openai_images import OpenAIImagesProvider
from app.providers.openai_videos import OpenAIVideosProvider
from app.providers.replicate import ReplicateProvider
from app.providers.runway import RunwayProvider
from app.providers.stability import StabilityProvider
from app.providers.veo import VeoProvider

MediaKey = tuple[str, str]
"""(provider type, job kind), e.g. ("openai", "video")."""


def build_media_providers(client: httpx.AsyncClient, settings: Settings) -> dict[MediaKey, MediaProvider]:
    timeout = settings.job_step_timeout_seconds
    local = LocalMediaProvider(
        settings.local_media_queue_seconds, settings.local_media_render_seconds, tiny=settings.local_media_tiny
    )
    runway = RunwayProvider(client, timeout=timeout)
    kling = KlingProvider(client, timeout=timeout)
    fal = FalProvider(client, timeout=timeout)
    replicate = ReplicateProvider(client, timeout=timeout)
    return {
        (ProviderType.LOCAL, "image"): local,
        (ProviderType.LOCAL, "video"): local,
        (ProviderType.OPENAI, "image"): OpenAIImagesProvider(client, timeout=timeout),
        (ProviderType.OPENAI, "video"): OpenAIVideosProvider(client, timeout=timeout),
        (ProviderType.RUNWAY, "video"): runway,
        (ProviderType.GEMINI, "video"): VeoProvider(client, timeout=timeout),
        (ProviderType.KLING, "image"): kling,
        (ProviderType.KLING, "video"): kling,
        (ProviderType.STABILITY, "image"): StabilityProvider(client, timeout=timeout),
        (ProviderType.BFL, "image"): BflProvider(client, timeout=timeout),
        (ProviderType.MIDJOURNEY, "image"): MidjourneyProvider(client, timeout=timeout),
        (ProviderType.FAL, "image"): fal,
        (ProviderType.FAL, "video"): fal,
        (ProviderType.REPLICATE, "image"): replicate,
        (ProviderType.REPLICATE, "video"): replicate,
    }
