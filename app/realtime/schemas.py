"""The OpenAI Realtime protocol (GA event names) as the gateway reads and writes it.

A client frame is decoded once, at the edge, into `ClientEvent` (only the fields the gateway reads;
the frame itself is relayed as it came to an OpenAI upstream). Server events the gateway makes itself
(the local model, the Gemini translation, errors) are built here.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

import msgspec

CLIENT_EVENTS = frozenset(
    {
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "conversation.item.delete",
        "response.create",
        "response.cancel",
        "output_audio_buffer.clear",
    }
)


class ClientEvent(msgspec.Struct, frozen=True):
    type: str
    event_id: str | None = None
    session: dict[str, Any] | None = None
    audio: str | None = None
    """input_audio_buffer.append: base64 PCM16."""
    item: dict[str, Any] | None = None
    response: dict[str, Any] | None = None


class _PeekResponse(msgspec.Struct):
    id: str | None = None
    status: str | None = None
    usage: dict[str, Any] | None = None


class ServerPeek(msgspec.Struct):
    """What the gateway reads of an upstream's event (the frame is relayed unchanged)."""

    type: str = ""
    response: _PeekResponse | None = None
    error: dict[str, Any] | None = None


decode_client = msgspec.json.Decoder(ClientEvent).decode
peek_server = msgspec.json.Decoder(ServerPeek).decode
encode = msgspec.json.Encoder().encode


class ProtocolError(Exception):
    """A client frame the gateway cannot read: answered with an `error` event, the session goes on."""

    def __init__(self, message: str, code: str = "invalid_event", event_id: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.event_id = message, code, event_id


def parse_client(frame: str | bytes) -> ClientEvent:
    try:
        event = decode_client(frame)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"The event is not valid JSON of the Realtime protocol: {exc}") from exc
    if event.type not in CLIENT_EVENTS:
        raise ProtocolError(f"Unknown event type '{event.type}'.", "invalid_event_type", event.event_id)
    return event


_counter = itertools.count(1)
_prefix = os.urandom(4).hex()


def new_id(prefix: str) -> str:
    return f"{prefix}_{_prefix}{next(_counter):08d}"


def error_event(message: str, code: str, type_: str = "invalid_request_error", event_id: str | None = None) -> bytes:
    return encode(
        {
            "type": "error",
            "event_id": new_id("event"),
            "error": {"type": type_, "code": code, "message": message, "param": None, "event_id": event_id},
        }
    )


@dataclass(slots=True)
class RealtimeUsage:
    """One response's tokens, split the way realtime prices are."""

    text_in: int = 0
    audio_in: int = 0
    cached_in: int = 0
    text_out: int = 0
    audio_out: int = 0

    @property
    def input_tokens(self) -> int:
        return self.text_in + self.audio_in

    @property
    def output_tokens(self) -> int:
        return self.text_out + self.audio_out

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def of(cls, usage: dict[str, Any] | None) -> RealtimeUsage:
        """From a `response.done`'s `usage` (OpenAI's shape; counts missing or malformed read as 0)."""
        usage = usage if isinstance(usage, dict) else {}
        details_in = usage.get("input_token_details") or {}
        details_out = usage.get("output_token_details") or {}

        def n(d: Any, key: str) -> int:
            value = d.get(key) if isinstance(d, dict) else None
            return value if isinstance(value, int) and value > 0 else 0

        audio_in, audio_out = n(details_in, "audio_tokens"), n(details_out, "audio_tokens")
        text_in = n(details_in, "text_tokens") if "text_tokens" in details_in else n(usage, "input_tokens") - audio_in
        text_out = (
            n(details_out, "text_tokens") if "text_tokens" in details_out else n(usage, "output_tokens") - audio_out
        )
        return cls(max(text_in, 0), audio_in, n(details_in, "cached_tokens"), max(text_out, 0), audio_out)

    def as_openai(self) -> dict[str, Any]:
        return {
            "total_tokens": self.total,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "input_token_details": {
                "text_tokens": self.text_in,
                "audio_tokens": self.audio_in,
                "cached_tokens": self.cached_in,
                "cached_tokens_details": {"text_tokens": self.cached_in, "audio_tokens": 0},
            },
            "output_token_details": {"text_tokens": self.text_out, "audio_tokens": self.audio_out},
        }

    def add(self, other: RealtimeUsage) -> None:
        self.text_in += other.text_in
        self.audio_in += other.audio_in
        self.cached_in += other.cached_in
        self.text_out += other.text_out
        self.audio_out += other.audio_out
