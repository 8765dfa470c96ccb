"""The one protocol every upstream adapter implements, and the values it passes back.

Adapters speak OpenAI to the gateway whatever they speak upstream: `chat` returns an OpenAI chat
completion object, `open_chat_stream` yields OpenAI `chat.completion.chunk` payloads (the ones of one
upstream read together, so the relay sends them in one go), `embed` returns an OpenAI embeddings
response. The shared upstream session is given to them once, the route per call.

Media adapters (`MediaProvider`) are task-style: submit → task id → poll → result files, whatever the
upstream's own shape; the job workers drive them one short step at a time.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
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
    max_output: int = 0
    """The output cap the hold was sized for, thinking included (also in `body`, under the field the
    upstream reads): translating adapters send exactly this."""
    thinking_budget: int = 0
    """The part of `max_output` for thinking (0 unless `reasoning`)."""


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
    end: bool = False
    """The end of the stream (`data` is `[DONE]`): relayed with the events before it, in one send."""


DONE = StreamEvent(b"[DONE]", end=True)


@dataclass(slots=True)
class StreamStats:
    usage: Usage | None = None
    content_chars: int = 0
    content_chunks: int = 0
    finished: bool = False
    """The upstream ended the stream properly ([DONE] or its own end marker)."""


class ChatStream(Protocol):
    stats: StreamStats

    def __aiter__(self) -> AsyncIterator[list[StreamEvent]]:
        """The events of each upstream read, as soon as it arrived (never an empty list); `DONE` last
        when the upstream ended the stream properly (else the relay adds it)."""
        ...

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


# ── Media (images and videos): task-style, driven by the job workers ────────────────────────────────


@dataclass(slots=True)
class MediaRequest:
    """One image or video job as an adapter sees it (rebuilt from the job row for every step)."""

    kind: str
    """"image" or "video"."""
    model: str
    """The upstream model name."""
    prompt: str
    size: str | None = None
    seconds: int | None = None
    n: int = 1
    quality: str | None = None
    style: str | None = None
    output_format: str = "png"
    input_reference: dict[str, Any] | None = None
    """{"image_url": …} or {"file_id": …} as the client sent it."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Vendor fields the client sent that the gateway does not interpret, passed on as they are."""
    reference: Reference | None = None
    """The uploaded `input_reference` file (our copy), set for the submit step only."""
    callback_url: str | None = None
    """Where the vendor may call back for this job (set for the submit step, when callbacks are on)."""

    def reference_url(self) -> str | None:
        """The reference image as a URL the vendor can fetch: the client's own URL, else a short-lived
        signed link to our copy of the upload."""
        image_url = (self.input_reference or {}).get("image_url")
        if isinstance(image_url, str):
            return image_url
        return self.reference.url if self.reference is not None else None

    def reference_data_url(self) -> str | None:
        """The reference image inline (data URL), for vendors that take no links; a client URL is kept."""
        if self.reference is not None:
            return self.reference.data_url()
        return self.reference_url()


@dataclass(slots=True)
class Reference:
    """An uploaded reference image: its bytes, type, and a signed link to our copy."""

    data: bytes
    content_type: str
    url: str | None = None

    def base64(self) -> str:
        return base64.b64encode(self.data).decode()

    def data_url(self) -> str:
        return f"data:{self.content_type};base64,{self.base64()}"


@dataclass(slots=True)
class Output:
    """One result file: where the upstream keeps it (`url`), or its bytes when they came inline."""

    variant: str
    """"image", "video" or "thumbnail"."""
    index: int = 0
    url: str | None = None
    data: bytes | None = None
    content_type: str | None = None
    revised_prompt: str | None = None

    def ref(self) -> dict[str, Any]:
        """What the job row keeps between the poll and the store step (never the bytes)."""
        return {
            "variant": self.variant,
            "index": self.index,
            "url": self.url,
            "content_type": self.content_type,
            "revised_prompt": self.revised_prompt,
        }

    @classmethod
    def from_ref(cls, ref: dict[str, Any]) -> Output:
        return cls(
            variant=str(ref["variant"]),
            index=int(ref.get("index") or 0),
            url=ref.get("url"),
            content_type=ref.get("content_type"),
            revised_prompt=ref.get("revised_prompt"),
        )


@dataclass(slots=True)
class Submission:
    task_id: str | None
    """The upstream's id of the task; None when the answer already holds the result."""
    outputs: list[Output] = field(default_factory=list)
    """Results that came with the answer (synchronous upstreams such as OpenAI images)."""
    poll_after: float | None = None
    """When the upstream expects the task to be worth a first poll (seconds), if it knows."""


class TaskState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class TaskStatus:
    state: TaskState
    progress: int | None = None
    outputs: list[Output] = field(default_factory=list)
    error_code: str | None = None
    error_message: str | None = None


@dataclass(slots=True)
class Download:
    content_type: str
    chunks: AsyncIterator[bytes]


class MediaProvider(Protocol):
    """Adapters for one upstream API family. Every method may raise a ProviderError:
    UpstreamUnavailable (incl. UpstreamRateLimited) is retried with back-off, UpstreamRejected fails
    the job with the upstream's reason."""

    def min_poll_seconds(self, route: Route) -> float:
        """The upstream asks not to be polled more often than this."""
        ...

    async def submit(self, route: Route, request: MediaRequest) -> Submission: ...

    async def poll(self, route: Route, task_id: str, request: MediaRequest) -> TaskStatus: ...

    def download(
        self, route: Route, task_id: str | None, request: MediaRequest, output: Output
    ) -> AbstractAsyncContextManager[Download]:
        """Open one result for reading; the caller streams `chunks` into storage."""
        ...

    async def cancel(self, route: Route, task_id: str) -> None:
        """Ask the upstream to stop (best effort; upstreams without a cancel do nothing)."""
        ...
