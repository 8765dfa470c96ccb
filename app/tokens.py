"""Token counting without a tokenizer: the local provider's real counts, and estimates when an
upstream reports no usage (a stream cut short)."""

from __future__ import annotations

import math
import re
from typing import Any

# A word or a single punctuation mark, with the whitespace before it: joining the pieces gives back
# the text exactly, so streamed pieces and counted tokens are the same thing.
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
