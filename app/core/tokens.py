"""Token counting without a tokenizer: the local provider's real counts, and estimates when an
upstream reports no usage (a stream cut short)."""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec

# A word or a single punctuation mark, with the whitespace before it: joining the pieces gives back
# the text exactly, so streamed pieces and counted tokens are the same thing.
_encode = msgspec.json.Encoder().encode
TOKEN_RE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$")


def split_tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    return len(split_tokens(text))


def estimate_text_tokens(chars: int) -> int:
    """Roughly four characters a token (OpenAI's rule of thumb), rounded up."""
    return math.ceil(chars / 4)


def message_text(content: Any) -> str:
    """The text of a chat message's `content` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def estimate_prompt_tokens(messages: list[Any]) -> int:
    """Prompt tokens of a chat request: ~4 chars a token plus 4 tokens of framing per message."""
    chars = 0
    for message in messages:
        if isinstance(message, dict):
            chars += len(message_text(message.get("content")))
            tool_calls = message.get("tool_calls")
            if tool_calls:
                chars += len(str(tool_calls))
    return estimate_text_tokens(chars) + 4 * len(messages) + 3


IMAGE_PART_TOKENS = 1600
"""An upper bound for one image in a message (OpenAI's high-detail tiles stay below it at 2048 px)."""


IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
FRAMING_TOKENS = 256
"""What the gateway may add to a client's body on its way upstream (model name, default temperature,
the cap field, Anthropic's or Gemini's wrapping of each message is smaller than OpenAI's own)."""


def request_token_bound(body_bytes: int, messages: list[Any]) -> int:
    """An upper bound on the prompt tokens of everything a chat request sends upstream — messages,
    tools, response_format and every other field: one token per byte of the client's JSON body (a
    token is at least one byte of text, and the body is at least the text it carries), except that an
    image counts a fixed IMAGE_PART_TOKENS instead of the bytes of its URL or data."""
    total = body_bytes + FRAMING_TOKENS
    for message in messages:
        content = message.content
        if isinstance(content, list):
            for part in content:
                if part.get("type") in IMAGE_PARTS:
                    # Re-encoded, a part is never longer than it was in the body: never subtracts too much.
                    total += IMAGE_PART_TOKENS - len(_encode(part))
    return max(total, FRAMING_TOKENS)


def input_token_bound(raw_input: Any) -> int:
    """Upper bound on an embeddings request's tokens (bytes of text, or the token arrays' length)."""
    if isinstance(raw_input, str):
        return len(raw_input.encode()) + 1
    if isinstance(raw_input, list):
        if raw_input and all(isinstance(t, int) for t in raw_input):
            return len(raw_input)
        return sum(input_token_bound(item) for item in raw_input)
    return 1


def input_token_estimate(raw_input: Any) -> int:
    if isinstance(raw_input, str):
        return estimate_text_tokens(len(raw_input)) + 1
    if isinstance(raw_input, list):
        if raw_input and all(isinstance(t, int) for t in raw_input):
            return len(raw_input)
        return sum(input_token_estimate(item) for item in raw_input)
    return 1
