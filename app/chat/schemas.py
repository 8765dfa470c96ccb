"""`POST /v1/chat/completions`: the typed request, and the one normalised reading of it.

The body is decoded once (app.core.edge.decode_object, then `ChatRequest`). Unknown fields are kept in the
body dict and passed upstream untouched. Everything money depends on is decided here, once, and every
later step reads it from `ChatRequest` and `output_cap` rather than from the body: the admission holds
for it and every adapter sends exactly that cap upstream.

Output cap precedence (documented in docs/api.md, Money): `max_completion_tokens` (OpenAI's current name)
wins over `max_tokens`; with neither, the model's maximum output (its price row, else the instance
default), lowered at admission to what the balance affords. `reasoning: true` adds the instance's
thinking budget to the cap: the budget is spent inside the cap upstream (Anthropic's `max_tokens`
includes thinking; OpenAI's reasoning tokens count against `max_completion_tokens`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app.core.edge import Count, Int64, Name, Text

GATEWAY_ONLY_FIELDS = ("reasoning",)
CAP_FIELDS = ("max_completion_tokens", "max_tokens")

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
Penalty = Annotated[float, msgspec.Meta(ge=-2, le=2)]


class ChatMessage(msgspec.Struct, kw_only=True):
    """One message; fields OpenAI adds later (audio, refusal, …) pass through in the body dict."""

    role: Role
    content: Text | list[dict[str, Any]] | None = None
    name: Text | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: Text | None = None


class StreamOptions(msgspec.Struct, kw_only=True):
    include_usage: bool = False


class ChatRequest(msgspec.Struct, kw_only=True):
    model: Name
    messages: Annotated[list[ChatMessage], msgspec.Meta(min_length=1, max_length=100_000)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=128)] = 1
    max_tokens: Count | None = None
    max_completion_tokens: Count | None = None
    reasoning: bool | None = None
    """Gateway field: the provider's own chain-of-thought switch (never sent as is)."""
    tools: list[dict[str, Any]] | None = None
    tool_choice: Text | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    stop: Text | list[Text] | None = None
    seed: Int64 | None = None
    user: Text | None = None
    metadata: dict[str, Text] | None = None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    @property
    def client_cap(self) -> int | None:
        """The output cap the client set, by the documented precedence."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


def output_cap(request: ChatRequest, answer_cap: int, thinking_budget: int) -> int:
    """Tokens one choice may produce upstream, thinking included: what is held for and sent."""
    return answer_cap + (thinking_budget if request.reasoning else 0)


class Usage(msgspec.Struct, kw_only=True):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int
    cost: int | None = None
    """What the request was charged, in micro-dollars (never more than its hold)."""


class Choice(msgspec.Struct, kw_only=True):
    index: int
    message: dict[str, Any]
    finish_reason: str | None = None


class ChatCompletion(msgspec.Struct, kw_only=True):
    """The answer of a non-streaming request (documentation; the upstream's object is relayed, with
    our id and cost). A streaming request answers `text/event-stream` chunks instead."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | None = None
