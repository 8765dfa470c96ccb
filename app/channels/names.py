"""Model names the gateway itself knows, below both the catalog (which lists the local models) and the
adapters (which serve them): here so that neither channels nor media imports a provider module (nor
the web process the OpenAI adapter's httpx)."""

from __future__ import annotations

CHAT_MODELS = ("local-chat", "local-reasoner")
EMBEDDING_MODELS = ("local-embedding",)
IMAGE_MODEL = "local-image"
VIDEO_MODEL = "local-video"
MEDIA_MODELS = (IMAGE_MODEL, VIDEO_MODEL)
"""Served by app/providers/local_media.py (images and videos, as jobs)."""
REALTIME_MODELS = ("local-realtime",)
"""Served by app/realtime/local.py over /v1/realtime."""
LOCAL_MODELS = (*CHAT_MODELS, *EMBEDDING_MODELS, *MEDIA_MODELS, *REALTIME_MODELS)


def is_gpt_image(model: str) -> bool:
    """GPT image models answer with bytes and an `output_format`; DALL·E with links by default."""
    return model.startswith(("gpt-image", "chatgpt-image"))
