"""Provider type → adapter instance. Adapters are built once per process around the shared clients:
the chat adapters around the aiohttp session, the media adapters around the httpx client."""

from __future__ import annotations

import aiohttp
import httpx

from app.channels.models import ProviderType
from app.providers.anthropic import AnthropicProvider
from app.providers.base import MediaProvider, Provider
from app.providers.gemini import GeminiProvider
from app.providers.local import LocalProvider
from app.providers.local_media import LocalMediaProvider
from app.providers.openai import OpenAIProvider
from app.providers.openai_images import OpenAIImagesProvider
from app.providers.openai_videos import OpenAIVideosProvider
from app.providers.runway import RunwayProvider
from app.settings import Settings

MediaKey = tuple[str, str]
"""(provider type, job kind), e.g. ("openai", "video")."""


def build_providers(session: aiohttp.ClientSession, settings: Settings) -> dict[str, Provider]:
    return {
        ProviderType.LOCAL: LocalProvider(settings.local_token_delay_ms),
        ProviderType.OPENAI: OpenAIProvider(session),
        ProviderType.ANTHROPIC: AnthropicProvider(session),
        ProviderType.GEMINI: GeminiProvider(session),
    }


def build_media_providers(client: httpx.AsyncClient, settings: Settings) -> dict[MediaKey, MediaProvider]:
    timeout = settings.job_step_timeout_seconds
    local = LocalMediaProvider(
        settings.local_media_queue_seconds, settings.local_media_render_seconds, tiny=settings.local_media_tiny
    )
    runway = RunwayProvider(client, timeout=timeout)
    return {
        (ProviderType.LOCAL, "image"): local,
        (ProviderType.LOCAL, "video"): local,
        (ProviderType.OPENAI, "image"): OpenAIImagesProvider(client, timeout=timeout),
        (ProviderType.OPENAI, "video"): OpenAIVideosProvider(client, timeout=timeout),
        (ProviderType.RUNWAY, "video"): runway,
    }
