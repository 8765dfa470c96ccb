"""The one protocol every upstream adapter implements, and the values it passes back.

Adapters speak OpenAI to the gateway whatever they speak upstream: `chat` returns an OpenAI chat
completion object, `open_chat_stream` yields OpenAI `chat.completion.chunk` payloads, `embed` returns
an OpenAI embeddings response. The shared httpx client and the route are given to them per call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from app.channels.catalog import Route


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False
    """True when the upstream reported nothing and the gateway counted for itself."""

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        if not isinstance(usage, dict):
            return None
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details")
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
        return cls(prompt, completion, int(usage.get("total_tokens") or prompt + completion), cached)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens:
            out["cached_tokens"] = self.cached_tokens
        if self.estimated:
            out["estimated"] = True
        return out


@dataclass(slots=True)
class ChatCall:
    """One chat request as an adapter sees it."""

    body: dict[str, Any]
    """OpenAI request body, `model` already the upstream name, gateway-only fields removed."""
    response_id: str
    """The id the client sees (the job id); adapters put it in every object and chunk."""
    public_model: str
    reasoning: bool | None = None


@dataclass(slots=True)
class ChatResult:
    completion: dict[str, Any]
    usage: Usage


@dataclass(slots=True)
class StreamEvent:
    data: bytes
    """One `chat.completion.chunk` JSON payload (without the `data: ` framing)."""
    usage_only: bool = False
    """The final usage chunk (`choices: []`), relayed only when the client asked for usage."""


@dataclass(slots=True)
class StreamStats:
    usage: Usage | None = None
    content_chars: int = 0
    content_chunks: int = 0
    finished: bool = False
    """The upstream ended the stream properly ([DONE] or its own end marker)."""


class ChatStream(Protocol):
    stats: StreamStats

    def __aiter__(self) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class EmbedResult:
    body: bytes
    """The OpenAI embeddings response, ready to relay."""
    usage: Usage


@dataclass(slots=True)
class EmbedCall:
    body: dict[str, Any]
    public_model: str
    extra: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    async def chat(self, route: Route, call: ChatCall) -> ChatResult: ...

    async def open_chat_stream(self, route: Route, call: ChatCall) -> ChatStream:
        """Send the request and return once the upstream accepted it (status 200); an error before
        that raises a ProviderError, so the caller can still answer with a status code or fail over."""
        ...

    async def embed(self, route: Route, call: EmbedCall) -> EmbedResult: ...
