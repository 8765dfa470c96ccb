"""Provider type → adapter instance. Adapters are built once per process around the shared client."""

from __future__ import annotations

import httpx

from app.channels.models import ProviderType
from app.providers.anthropic import AnthropicProvider
from app.providers.base import Provider
from app.providers.gemini import GeminiProvider
from app.providers.local import LocalProvider
from app.providers.openai import OpenAIProvider
from app.settings import Settings


def build_providers(client: httpx.AsyncClient, settings: Settings) -> dict[str, Provider]:
    return {
        ProviderType.LOCAL: LocalProvider(settings.local_token_delay_ms),
        ProviderType.OPENAI: OpenAIProvider(client),
        ProviderType.ANTHROPIC: AnthropicProvider(client),
        ProviderType.GEMINI: GeminiProvider(client),
    }
