"""Server events of one response, in the order OpenAI's Realtime API sends them, for the upstreams
that do not speak the protocol themselves (the local model, the Gemini Live translation)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from app.realtime.schemas import RealtimeUsage, encode, new_id

Emit = Callable[[bytes], None]


def default_session(model: str, max_output_tokens: int) -> dict[str, Any]:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": max_output_tokens,
        "audio": {
            "input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": None, "turn_detection": None},
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
        },
    }


def merge_session(session: dict[str, Any], update: dict[str, Any]) -> None:
    """A `session.update` changes only the fields it names (nested dicts merged)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(session.get(key), dict):
            merge_session(session[key], value)
        else:
            session[key] = value


def event(type_: str, **fields: Any) -> bytes:
    return encode({"type": type_, "event_id": new_id("event"), **fields})


class ResponseWriter:
    """Writes one assistant response: a message item with audio (+ transcript) or text, function calls,
    then `response.done` with usage."""

    def __init__(self, emit: Emit, audio: bool) -> None:
        self.emit = emit
        self.audio = audio
        self.id = new_id("resp")
        self.item_id = new_id("item")
        self.text: list[str] = []
        self.output: list[dict[str, Any]] = []
        self.opened = False
        self.done = False

    def _ids(self) -> dict[str, Any]:
        return {"response_id": self.id, "item_id": self.item_id, "output_index": 0, "content_index": 0}

    def start(self) -> None:
        self.emit(event("response.created", response=self._response("in_progress", None)))

    def _open_item(self) -> None:
        if self.opened:
            return
        self.opened = True
        item = {"id": self.item_id, "object": "realtime.item", "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}  # fmt: skip
        self.emit(event("response.output_item.added", response_id=self.id, output_index=0, item=item))
        self.emit(event("conversation.item.added", previous_item_id=None, item=item))
        part = {"type": "audio", "transcript": ""} if self.audio else {"type": "text", "text": ""}
        self.emit(event("response.content_part.added", **self._ids(), part=part))

    def text_delta(self, delta: str) -> None:
        if not delta:
            return
        self._open_item()
        self.text.append(delta)
        kind = "response.output_audio_transcript.delta" if self.audio else "response.output_text.delta"
        self.emit(event(kind, **self._ids(), delta=delta))

    def audio_delta(self, pcm: bytes) -> None:
        if not pcm or not self.audio:
            return
        self._open_item()
        self.emit(event("response.output_audio.delta", **self._ids(), delta=base64.b64encode(pcm).decode()))

    def function_call(self, call_id: str, name: str, arguments: str) -> None:
        item = {"id": new_id("item"), "object": "realtime.item", "type": "function_call", "status": "completed",
                "call_id": call_id, "name": name, "arguments": arguments}  # fmt: skip
        index = len(self.output) + (1 if self.opened else 0)
        self.emit(event("response.output_item.added", response_id=self.id, output_index=index, item=item))
        self.emit(event("response.function_call_arguments.delta", response_id=self.id, item_id=item["id"],
                        output_index=index, call_id=call_id, delta=arguments))  # fmt: skip
        self.emit(event("response.function_call_arguments.done", response_id=self.id, item_id=item["id"],
                        output_index=index, call_id=call_id, name=name, arguments=arguments))  # fmt: skip
        self.emit(event("response.output_item.done", response_id=self.id, output_index=index, item=item))
        self.output.append(item)

    def finish(self, usage: RealtimeUsage, status: str = "completed") -> None:
        if self.done:
            return
        self.done = True
        text = "".join(self.text)
        if self.opened:
            if self.audio:
                self.emit(event("response.output_audio.done", **self._ids()))
                self.emit(event("response.output_audio_transcript.done", **self._ids(), transcript=text))
                part: dict[str, Any] = {"type": "audio", "transcript": text}
            else:
                self.emit(event("response.output_text.done", **self._ids(), text=text))
                part = {"type": "text", "text": text}
            self.emit(event("response.content_part.done", **self._ids(), part=part))
            item = {"id": self.item_id, "object": "realtime.item", "type": "message", "role": "assistant",
                    "status": "completed" if status == "completed" else "incomplete",
                    "content": [{"type": "output_audio" if self.audio else "output_text",
                                 ("transcript" if self.audio else "text"): text}]}  # fmt: skip
            self.emit(event("response.output_item.done", response_id=self.id, output_index=0, item=item))
            self.emit(event("conversation.item.done", previous_item_id=None, item=item))
            self.output.insert(0, item)
        self.emit(event("response.done", response=self._response(status, usage)))

    def _response(self, status: str, usage: RealtimeUsage | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "realtime.response",
            "status": status,
            "status_details": None if status in ("completed", "in_progress") else {"type": status},
            "output": self.output if usage is not None else [],
            "output_modalities": ["audio"] if self.audio else ["text"],
            "usage": usage.as_openai() if usage is not None else None,
        }
