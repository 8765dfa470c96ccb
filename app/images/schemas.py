"""The OpenAI Images API's shapes: the generation request, the `ImagesResponse`, and our image job
object (`Prefer: respond-async`, GET /v1/images/generations/{id})."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from app.db import to_unix
from app.errors import InvalidRequest
from app.jobs.models import Job
from app.jobs.schemas import error_of, parse_metadata, parse_prompt, parse_webhook
from app.validation import optional_int, wrong_type
from storage import ObjectStore
from storage.base import read_all

DEFAULT_MODEL = "dall-e-2"
SIZES = ("auto", "256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792")
QUALITIES = ("auto", "standard", "hd", "low", "medium", "high")
STYLES = ("vivid", "natural")
FORMATS = ("png", "jpeg", "webp")
PROMPT_LIMITS = {"dall-e-2": 1000, "dall-e-3": 4000}
KNOWN = {
    "model",
    "prompt",
    "n",
    "size",
    "quality",
    "style",
    "response_format",
    "output_format",
    "metadata",
    "webhook_url",
    "webhook_events",
}


def is_gpt_image(model: str) -> bool:
    """GPT image models answer with bytes and an `output_format`; DALL·E with links by default. Here
    rather than in the OpenAI adapter (which uses it too) so the web process does not load the
    adapter's httpx."""
    return model.startswith(("gpt-image", "chatgpt-image"))


@dataclass(slots=True)
class ImageCreate:
    model: str
    prompt: str
    n: int
    size: str | None
    quality: str | None
    style: str | None
    response_format: str
    output_format: str
    metadata: dict[str, str] | None
    webhook_url: str | None
    webhook_events: list[str] | None
    extra: dict[str, Any]

    def params(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "size": self.size,
            "quality": self.quality,
            "style": self.style,
            "response_format": self.response_format,
            "output_format": self.output_format,
            "extra": self.extra,
        }


def _choice(body: dict[str, Any], param: str, allowed: tuple[str, ...]) -> str | None:
    value = body.get(param)
    if value is None:
        return None
    if not isinstance(value, str):
        raise wrong_type(param, "a string", value)
    if value not in allowed:
        raise InvalidRequest(f"'{param}' must be one of {', '.join(allowed)}; got {value!r}.", param=param)
    return value


def parse_image_create(body: dict[str, Any]) -> ImageCreate:
    model = body.get("model") or DEFAULT_MODEL
    if not isinstance(model, str):
        raise wrong_type("model", "a string", model)
    n = optional_int(body, "n", 1, 10) or 1
    if model == "dall-e-3" and n != 1:
        raise InvalidRequest("dall-e-3 makes one image per request: 'n' must be 1.", param="n")
    gpt_image = is_gpt_image(model)
    response_format = _choice(body, "response_format", ("url", "b64_json")) or ("b64_json" if gpt_image else "url")
    webhook_url, webhook_events = parse_webhook(body.get("webhook_url"), body.get("webhook_events"), "image")
    return ImageCreate(
        model=model,
        prompt=parse_prompt(body.get("prompt"), PROMPT_LIMITS.get(model, 32_000)),
        n=n,
        size=_choice(body, "size", SIZES),
        quality=_choice(body, "quality", QUALITIES),
        style=_choice(body, "style", STYLES),
        response_format=response_format,
        output_format=_choice(body, "output_format", FORMATS) or "png",
        metadata=parse_metadata(body.get("metadata")),
        webhook_url=webhook_url,
        webhook_events=webhook_events,
        extra={k: v for k, v in body.items() if k not in KNOWN},
    )


def _images(job: Job) -> list[dict[str, Any]]:
    return sorted((a for a in job.assets or [] if a.get("variant") == "image"), key=lambda a: int(a.get("index", 0)))


async def images_response(job: Job, store: ObjectStore, ttl: int, response_format: str | None = None) -> dict[str, Any]:
    """OpenAI's `ImagesResponse` for a completed job: signed links to our copies, or the bytes."""
    params = job.params or {}
    response_format = response_format or params.get("response_format") or "url"
    data = []
    for asset in _images(job):
        item: dict[str, Any] = {}
        if response_format == "b64_json":
            item["b64_json"] = base64.b64encode(await read_all(store, str(asset["key"]))).decode()
        else:
            item["url"] = store.signed_url(str(asset["key"]), ttl)
        if asset.get("revised_prompt"):
            item["revised_prompt"] = asset["revised_prompt"]
        data.append(item)
    response: dict[str, Any] = {"created": to_unix(job.created_at), "data": data}
    if is_gpt_image(job.model):
        response.update(output_format=params.get("output_format", "png"), size=params.get("size"))
        response["quality"] = params.get("quality")
    return response


async def image_job_object(job: Job, store: ObjectStore | None, ttl: int) -> dict[str, Any]:
    """Our image job (an extension): status like a video's, `result` = the ImagesResponse with URLs
    (signed by `store`; without one, `result` stays null)."""
    result = await images_response(job, store, ttl, "url") if job.status == "completed" and store else None
    return {
        "id": job.id,
        "object": "image.generation",
        "model": job.model,
        "status": job.status,
        "progress": job.progress,
        "created_at": to_unix(job.created_at),
        "completed_at": to_unix(job.completed_at),
        "expires_at": to_unix(job.expires_at),
        "prompt": job.prompt,
        "error": error_of(job),
        "result": result,
        "metadata": job.user_metadata or {},
        "webhook_url": job.webhook_url,
    }
