"""The built-in `local` provider: no network, deterministic, real usage counts.

It answers chat by quoting the last user message (streamed token by token), and embeds text as
unit-length vectors derived from a hash of the input, so equal inputs get equal vectors. It lets the
quickstart work on a fresh machine with no upstream key, and gives tests a provider that needs nothing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import sys
import time
from array import array
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import msgspec

from app.channels.names import EMBEDDING_MODELS, MEDIA_MODELS
from app.core.tokens import count_tokens, message_text, split_tokens
from app.core.upstream_errors import UpstreamRejected
from app.providers.base import ChatCall, ChatResult, EmbedCall, EmbedResult, StreamEvent, StreamStats, Usage

if TYPE_CHECKING:
    from app.channels.catalog import Route

DEFAULT_DIMENSIONS = 1536
MAX_DIMENSIONS = 4096

_encode = msgspec.json.Encoder().encode


def compose_answer(messages: list[Any]) -> str:
    said = ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            said = " ".join(message_text(message.get("content")).split())
            break
    if not said:
        return "Hello! This is HeyToken's built-in local model. Ask me anything."
    if len(said) > 400:
        said = said[:400] + "…"
    return f"You said: “{said}”. This answer comes from HeyToken's built-in local model, which needs no network."


def compose_reasoning(messages: list[Any]) -> str:
    return f"The user sent {len(messages)} message(s); the local model quotes the last one back."


def prompt_tokens(messages: list[Any]) -> int:
    # OpenAI-like framing: a few tokens per message on top of its text.
    return sum(count_tokens(message_text(m.get("content"))) + 4 for m in messages if isinstance(m, dict)) + 3


class LocalProvider:
    def __init__(self, token_delay_ms: float = 0.0) -> None:
        self._delay = token_delay_ms / 1000

    @staticmethod
    def _check_chat(route: Route) -> None:
        if route.upstream_model in EMBEDDING_MODELS or route.upstream_model in MEDIA_MODELS:
            raise UpstreamRejected(
                f"{route.upstream_model} is not a chat model; it cannot chat.",
                status=400,
                error={
                    "message": f"{route.upstream_model} does not support chat completions.",
                    "type": "invalid_request_error",
                    "param": "model",
                    "code": "model_not_supported",
                },
            )

    @staticmethod
    def _plan(route: Route, call: ChatCall) -> tuple[list[str], list[str], str, int]:
        messages = call.body.get("messages") or []
        reasoning = call.reasoning if call.reasoning is not None else route.upstream_model == "local-reasoner"
        thoughts = split_tokens(compose_reasoning(messages)) if reasoning else []
        tokens = split_tokens(compose_answer(messages))
        limit = call.max_output
        finish = "stop"
        if limit:
            thoughts = thoughts[:limit]
            budget = max(0, limit - len(thoughts))
            if len(tokens) > budget:
                tokens, finish = tokens[:budget], "length"
        return thoughts, tokens, finish, prompt_tokens(messages)

    async def chat(self, route: Route, call: ChatCall) -> ChatResult:
        self._check_chat(route)
        thoughts, tokens, finish, prompt = self._plan(route, call)
        n = int(call.body.get("n") or 1)
        message: dict[str, Any] = {"role": "assistant", "content": "".join(tokens), "refusal": None}
        if thoughts:
            message["reasoning_content"] = "".join(thoughts)
        usage = _usage(prompt, len(tokens) * n + len(thoughts) * n, len(thoughts) * n)
        completion = {
            "id": call.response_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.public_model,
            "choices": [
                {"index": i, "message": dict(message), "logprobs": None, "finish_reason": finish} for i in range(n)
            ],
            "usage": usage.as_dict(),
            "system_fingerprint": "fp_local",
        }
        return ChatResult(completion, usage)

    async def open_chat_stream(self, route: Route, call: ChatCall) -> LocalChatStream:
        self._check_chat(route)
        return LocalChatStream(self._plan(route, call), call, self._delay)

    async def embed(self, route: Route, call: EmbedCall) -> EmbedResult:
        if route.upstream_model not in EMBEDDING_MODELS:
            raise UpstreamRejected(
                f"{route.upstream_model} is a chat model; it cannot embed.",
                status=400,
                error={
                    "message": f"{route.upstream_model} does not support embeddings.",
                    "type": "invalid_request_error",
                    "param": "model",
                    "code": "model_not_supported",
                },
            )
        body = call.body
        raw_input = body["input"]
        items: list[Any] = (
            raw_input
            if isinstance(raw_input, list) and raw_input and not isinstance(raw_input[0], int)
            else [raw_input]
        )
        dims = int(body.get("dimensions") or DEFAULT_DIMENSIONS)
        if dims > MAX_DIMENSIONS:
            raise UpstreamRejected(
                f"dimensions must be at most {MAX_DIMENSIONS}.",
                status=400,
                error={
                    "message": f"dimensions must be at most {MAX_DIMENSIONS}.",
                    "type": "invalid_request_error",
                    "param": "dimensions",
                    "code": None,
                },
            )
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for index, item in enumerate(items):
            text = item if isinstance(item, str) else " ".join(str(t) for t in item)
            tokens += count_tokens(text) if isinstance(item, str) else len(item)
            vector = embed_vector(text, dims)
            embedding: Any = _to_base64(vector) if as_base64 else vector.tolist()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        usage = Usage(tokens, 0, tokens)
        payload = {
            "object": "list",
            "data": data,
            "model": call.public_model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return EmbedResult(_encode(payload), usage)


def embed_vector(text: str, dims: int) -> array[float]:
    """A unit vector of float32 values from a hash of the text (equal text → equal vector)."""
    raw = array("H", hashlib.shake_256(text.encode()).digest(dims * 2))
    values = [v / 32767.5 - 1.0 for v in raw]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return array("f", (v / norm for v in values))


def _to_base64(vector: array[float]) -> str:
    if sys.byteorder != "little":
        vector = array("f", vector)
        vector.byteswap()
    return base64.b64encode(vector.tobytes()).decode()


def _usage(prompt: int, completion: int, reasoning: int) -> Usage:
    return Usage(prompt, completion, prompt + completion)


class LocalChatStream:
    def __init__(self, plan: tuple[list[str], list[str], str, int], call: ChatCall, delay: float) -> None:
        self._thoughts, self._tokens, self._finish, self._prompt = plan
        self._call = call
        self._delay = delay
        self.stats = StreamStats()

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _encode(
            {
                "id": self._call.response_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self._call.public_model,
                "system_fingerprint": "fp_local",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
        )

    async def __aiter__(self) -> AsyncIterator[list[StreamEvent]]:
        """One event at a time, as a token-by-token upstream sends them."""
        stats = self.stats
        yield [StreamEvent(self._chunk({"role": "assistant", "content": ""}))]
        for key, pieces in (("reasoning_content", self._thoughts), ("content", self._tokens)):
            for piece in pieces:
                if self._delay:
                    await asyncio.sleep(self._delay)
                stats.content_chars += len(piece)
                stats.content_chunks += 1
                yield [StreamEvent(self._chunk({key: piece}))]
        yield [StreamEvent(self._chunk({}, self._finish))]
        completion = len(self._tokens) + len(self._thoughts)
        usage = _usage(self._prompt, completion, len(self._thoughts))
        stats.usage = usage
        stats.finished = True
        usage_event = StreamEvent(
            _encode(
                {
                    "id": self._call.response_id,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": self._call.public_model,
                    "system_fingerprint": "fp_local",
                    "choices": [],
                    "usage": usage.as_dict(),
                }
            ),
            usage_only=True,
        )
        yield [usage_event]

    async def aclose(self) -> None:
        return None
