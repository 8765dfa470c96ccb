"""`local-realtime`: a realtime model in the process, no network, deterministic.

It answers a text turn with "You said: <text>" and a committed audio turn with a transcript of its
length ("<n> milliseconds of audio") and the answer "I heard <n> milliseconds of audio". The answer
comes as audio (each word a 0.2 s tone, PCM16 at 24 kHz) with its transcript, or as text when the
session's `output_modalities` is `["text"]`. Usage: text tokens are words, audio tokens one per 100 ms.
Only `response.create` starts a response (no voice activity detection).
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from app.realtime import audio
from app.realtime.events import ResponseWriter, default_session, event, merge_session
from app.realtime.schemas import ClientEvent, RealtimeUsage, error_event, new_id
from app.realtime.upstream import QueuedUpstream

AUDIO_TOKEN_MS = 100
MAX_BUFFER_BYTES = 15 * 1024 * 1024


def _audio_tokens(pcm_bytes: int) -> int:
    return math.ceil(audio.seconds(pcm_bytes) * 1000 / AUDIO_TOKEN_MS)


class LocalRealtime(QueuedUpstream):
    def __init__(self, model: str, max_output_tokens: int) -> None:
        super().__init__()
        self.session = default_session(model, max_output_tokens)
        self.buffer = bytearray()
        self.pending: list[tuple[str, int]] = []
        """The user's turns since the last response: (text, audio tokens)."""
        self.context = 0
        """Tokens of the conversation so far (read again, cached, by every response)."""
        self.emit(event("session.created", session=self.session))

    async def send(self, ev: ClientEvent, frame: str | bytes) -> None:
        handler = getattr(self, "_" + ev.type.replace(".", "_"), None)
        if handler is None:
            message = f"local-realtime does not support '{ev.type}'."
            self.emit(error_event(message, "unsupported_event", event_id=ev.event_id))
            return
        handler(ev)

    def _session_update(self, ev: ClientEvent) -> None:
        merge_session(self.session, {k: v for k, v in (ev.session or {}).items() if k not in ("type", "model")})
        self.emit(event("session.updated", session=self.session))

    def _input_audio_buffer_append(self, ev: ClientEvent) -> None:
        try:
            pcm = base64.b64decode(ev.audio or "", validate=True)
        except (binascii.Error, ValueError):
            self.emit(error_event("The audio is not valid base64.", "invalid_audio", event_id=ev.event_id))
            return
        if len(self.buffer) + len(pcm) > MAX_BUFFER_BYTES:
            self.emit(error_event("The input audio buffer is full (15 MiB).", "buffer_full", event_id=ev.event_id))
            return
        self.buffer += pcm

    def _input_audio_buffer_clear(self, ev: ClientEvent) -> None:
        self.buffer.clear()
        self.emit(event("input_audio_buffer.cleared"))

    def _input_audio_buffer_commit(self, ev: ClientEvent) -> None:
        if len(self.buffer) < 2:
            self.emit(error_event("The input audio buffer is empty.", "input_audio_buffer_commit_empty",
                                  event_id=ev.event_id))  # fmt: skip
            return
        ms = round(audio.seconds(len(self.buffer)) * 1000)
        item_id = new_id("item")
        transcript = f"{ms} milliseconds of audio"
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
                "content": [{"type": "input_audio", "transcript": transcript}]}  # fmt: skip
        self.emit(event("input_audio_buffer.committed", previous_item_id=None, item_id=item_id))
        self.emit(event("conversation.item.added", previous_item_id=None, item=item))
        self.emit(event("conversation.item.done", previous_item_id=None, item=item))
        self.emit(event("conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0,
                        transcript=transcript))  # fmt: skip
        self.pending.append((f"I heard {ms} milliseconds of audio", _audio_tokens(len(self.buffer))))
        self.buffer.clear()

    def _conversation_item_create(self, ev: ClientEvent) -> None:
        item: dict[str, Any] = dict(ev.item or {})
        item.setdefault("id", new_id("item"))
        item.setdefault("object", "realtime.item")
        texts = [
            str(part.get("text", ""))
            for part in item.get("content") or []
            if isinstance(part, dict) and part.get("type") in ("input_text", "text")
        ]
        self.emit(event("conversation.item.added", previous_item_id=None, item=item))
        self.emit(event("conversation.item.done", previous_item_id=None, item=item))
        if item.get("type") == "function_call_output":
            self.pending.append(("Thanks for the result", 0))
        elif texts:
            self.pending.append(("You said: " + " ".join(texts), 0))

    def _response_create(self, ev: ClientEvent) -> None:
        options = ev.response or {}
        modalities = options.get("output_modalities") or self.session.get("output_modalities") or ["audio"]
        writer = ResponseWriter(self.emit, audio="audio" in modalities)
        writer.start()
        answer = " ".join(text for text, _ in self.pending) or "Hello"
        words = answer.split()
        cap = options.get("max_output_tokens") or self.session.get("max_output_tokens")
        if isinstance(cap, int):
            words = words[: max(cap, 1)]
        for i, word in enumerate(words):
            writer.text_delta(" " + word if i else word)
            writer.audio_delta(audio.tone(word))
        text_in = sum(len(text.split()) for text, audio_tokens in self.pending if not audio_tokens)
        audio_in = sum(audio_tokens for _, audio_tokens in self.pending)
        usage = RealtimeUsage(text_in=text_in + self.context, audio_in=audio_in, cached_in=self.context)
        if writer.audio:
            usage.text_out = len(words)
            usage.audio_out = _audio_tokens(len(words) * audio.WORD_SAMPLES * 2)
        else:
            usage.text_out = len(words)
        self.context += usage.total - self.context
        self.pending.clear()
        writer.finish(usage, "completed" if len(words) == len(answer.split()) else "incomplete")

    def _response_cancel(self, ev: ClientEvent) -> None:
        # Responses are written whole as soon as they are asked for: never one to cancel.
        self.emit(error_event("There is no response in progress.", "response_cancel_not_active",
                              event_id=ev.event_id))  # fmt: skip

    async def close(self) -> None:
        self.end("closed")
