"""Provider type → chat adapter instance, built once per process around the shared aiohttp session.

The media adapters are in app/providers/media_registry.py: only the job workers drive them, and they
pull in httpx, which the web process then never loads.
"""

from __future__ import annotations

import aiohttp

from app.channels.models import ProviderType
from app.core.settings import Settings
from app.providers.anthropic import AnthropicProvider
from app.providers.base import Provider
from app.providers.gemini import GeminiProvider
from app.providers.local import LocalProvider
from app.providers.openai import OpenAIProvider


def build_providers(session: aiohttp.ClientSession, settings: Settings) -> dict[str, Provider]:
    return {
        ProviderType.LOCAL: LocalProvider(settings.local_token_delay_ms),
        ProviderType.OPENAI: OpenAIProvider(session),
        ProviderType.ANTHROPIC: AnthropicProvider(session),
        ProviderType.GEMINI: GeminiProvider(session),
    }
