"""A realtime channel of provider `gemini`: Gemini Live (`BidiGenerateContent`) translated to and from
OpenAI's Realtime events.

Gemini fixes a session's configuration in its first message (`setup`), so the client's
`session.update`s are answered here and the setup goes out with the first event that needs the model.
Audio goes up as PCM16 at 16 kHz (the client's 24 kHz resampled) between `activityStart` and
`activityEnd` (the gateway turns Gemini's own voice detection off: a commit ends the turn, as with
OpenAI's `turn_detection: null`), and comes back at 24 kHz. Gemini answers a committed turn by itself,
so a `response.create` after a commit starts nothing more. Text turns go as `clientContent`, tool
results as `toolResponse`; `toolCall`, `interrupted`, transcriptions and `usageMetadata` come back as
the OpenAI events a client expects. Gemini cannot cancel a turn: after `response.cancel` the rest of
the turn is dropped and its usage still billed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
from typing import Any

import msgspec

from app.channels.catalog import Route
from app.core.settings import Settings
from app.realtime import audio
from app.realtime.events import ResponseWriter, default_session, event, merge_session
from app.realtime.openai import SocketUpstream, open_socket, ws_url
from app.realtime.schemas import ClientEvent, RealtimeUsage, error_event, new_id
from app.realtime.upstream import QueuedUpstream, UpstreamClosed

DEFAULT_BASE = "https://generativelanguage.googleapis.com"
LIVE_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
GEMINI_VOICES = frozenset({"Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr"})
_RATE = re.compile(r"rate=(\d+)")
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def live_url(route: Route) -> str:
    if route.options.get("realtime_url"):
        return str(route.options["realtime_url"])
    base = (route.base_url or DEFAULT_BASE).split("/v1", 1)[0]
    return ws_url(base, LIVE_PATH, {"key": route.api_key or ""})


def usage_of(meta: dict[str, Any] | None) -> RealtimeUsage:
    meta = meta or {}

    def audio_tokens(details: Any) -> int:
        return sum(
            int(d.get("tokenCount") or 0) for d in details or [] if isinstance(d, dict) and d.get("modality") == "AUDIO"
        )

    prompt = int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0)
    response = int(meta.get("responseTokenCount") or meta.get("candidatesTokenCount") or 0)
    response += int(meta.get("thoughtsTokenCount") or 0)
    audio_in = audio_tokens(meta.get("promptTokensDetails"))
    audio_out = audio_tokens(meta.get("responseTokensDetails"))
    cached = int(meta.get("cachedContentTokenCount") or 0)
    return RealtimeUsage(max(prompt - audio_in, 0), audio_in, cached, max(response - audio_out, 0), audio_out)


class GeminiLive(QueuedUpstream, SocketUpstream):
    def __init__(self, ws: Any, route: Route, cap: int) -> None:
        QueuedUpstream.__init__(self)
        self.ws = ws
        self.model = (
            route.upstream_model if route.upstream_model.startswith("models/") else ("models/" + route.upstream_model)
        )
        self.session = default_session(route.upstream_model, cap)
        self.setup_done = asyncio.Event()
        self.started = False
        self.speaking = False
        """An activityStart went up and its activityEnd has not."""
        self.buffered = 0
        self.turns: list[dict[str, Any]] = []
        self.unclaimed = 0
        """Turns Gemini answers by itself (a commit, a tool result): the client's response.create that
        follows each starts nothing more."""
        self.writer: ResponseWriter | None = None
        self.cancelled = False
        self.heard: list[str] = []
        self.heard_item: str | None = None
        self.usage: dict[str, Any] | None = None
        self.carry = RealtimeUsage()
        """Usage reported after its response was already done (a tool call): billed with the next."""
        self.calls: dict[str, str] = {}
        self.reader = asyncio.create_task(self._read())
        self.emit(event("session.created", session=self.session))

    @classmethod
    async def open(cls, route: Route, settings: Settings) -> GeminiLive:
        ws = await open_socket(live_url(route), {}, settings, route.channel_name)
        return cls(ws, route, settings.realtime_max_output_tokens)

    # -- client → Gemini ------------------------------------------------------------------------
    async def _up(self, message: dict[str, Any]) -> None:
        if not self.started:
            self.started = True
            await self.send_raw(_encode(self._setup()).decode())
            await self.setup_done.wait()
        await self.send_raw(_encode(message).decode())

    def _setup(self) -> dict[str, Any]:
        s = self.session
        audio_out = "audio" in (s.get("output_modalities") or ["audio"])
        config: dict[str, Any] = {"responseModalities": ["AUDIO" if audio_out else "TEXT"]}
        if isinstance(s.get("max_output_tokens"), int):
            config["maxOutputTokens"] = s["max_output_tokens"]
        voice = ((s.get("audio") or {}).get("output") or {}).get("voice")
        if voice in GEMINI_VOICES:
            config["speechConfig"] = {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice}}}
        setup: dict[str, Any] = {
            "model": self.model,
            "generationConfig": config,
            "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}},
            "inputAudioTranscription": {},
        }
        if audio_out:
            setup["outputAudioTranscription"] = {}
        if s.get("instructions"):
            setup["systemInstruction"] = {"parts": [{"text": s["instructions"]}]}
        functions = [
            {k: t[k] for k in ("name", "description", "parameters") if k in t}
            for t in s.get("tools") or []
            if isinstance(t, dict) and t.get("type", "function") == "function"
        ]
        if functions:
            setup["tools"] = [{"functionDeclarations": functions}]
        return {"setup": setup}

    async def send(self, ev: ClientEvent, frame: str | bytes) -> None:
        kind = ev.type
        if kind == "session.update":
            merge_session(self.session, {k: v for k, v in (ev.session or {}).items() if k not in ("type", "model")})
            self.emit(event("session.updated", session=self.session))
        elif kind == "input_audio_buffer.append":
            await self._append(ev)
        elif kind == "input_audio_buffer.commit":
            await self._commit(ev)
        elif kind == "input_audio_buffer.clear":
            self.buffered = 0
            self.emit(event("input_audio_buffer.cleared"))
        elif kind == "conversation.item.create":
            await self._item(ev)
        elif kind == "response.create":
            if self.unclaimed and not self.turns:
                self.unclaimed -= 1
                return  # Gemini answers (or answered) that turn already
            await self._up({"clientContent": {"turns": self.turns, "turnComplete": True}})
            self.turns = []
        elif kind == "response.cancel":
            if self.writer is None or self.cancelled:
                self.emit(error_event("There is no response in progress.", "response_cancel_not_active"))
            else:
                self.cancelled = True
        else:
            self.emit(error_event(f"'{kind}' is not supported by this model's upstream.", "unsupported_event",
                                  event_id=ev.event_id))  # fmt: skip

    async def _append(self, ev: ClientEvent) -> None:
        try:
            pcm = base64.b64decode(ev.audio or "", validate=True)
        except (binascii.Error, ValueError):
            self.emit(error_event("The audio is not valid base64.", "invalid_audio", event_id=ev.event_id))
            return
        if not self.speaking:
            self.speaking = True
            await self._up({"realtimeInput": {"activityStart": {}}})
        self.buffered += len(pcm)
        data = base64.b64encode(audio.resample(pcm, audio.OPENAI_RATE, audio.GEMINI_INPUT_RATE)).decode()
        await self._up({"realtimeInput": {"audio": {"data": data, "mimeType": "audio/pcm;rate=16000"}}})

    async def _commit(self, ev: ClientEvent) -> None:
        if not self.speaking or self.buffered < 2:
            self.emit(error_event("The input audio buffer is empty.", "input_audio_buffer_commit_empty",
                                  event_id=ev.event_id))  # fmt: skip
            return
        self.speaking, self.buffered = False, 0
        self.unclaimed += 1
        self.heard_item = item_id = new_id("item")
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}]}  # fmt: skip
        self.emit(event("input_audio_buffer.committed", previous_item_id=None, item_id=item_id))
        self.emit(event("conversation.item.added", previous_item_id=None, item=item))
        self.emit(event("conversation.item.done", previous_item_id=None, item=item))
        await self._up({"realtimeInput": {"activityEnd": {}}})

    async def _item(self, ev: ClientEvent) -> None:
        item: dict[str, Any] = {"id": new_id("item"), "object": "realtime.item", **(ev.item or {})}
        self.emit(event("conversation.item.added", previous_item_id=None, item=item))
        self.emit(event("conversation.item.done", previous_item_id=None, item=item))
        if item.get("type") == "function_call_output":
            call_id = str(item.get("call_id") or "")
            response = {"id": call_id, "name": self.calls.get(call_id, ""), "response": {"output": item.get("output")}}
            self.unclaimed += 1
            await self._up({"toolResponse": {"functionResponses": [response]}})
            return
        parts = [
            {"text": str(p.get("text", ""))}
            for p in item.get("content") or []
            if isinstance(p, dict) and p.get("type") in ("input_text", "text", "output_text")
        ]
        if parts:
            role = "model" if item.get("role") == "assistant" else "user"
            self.turns.append({"role": role, "parts": parts})

    # -- Gemini → client ------------------------------------------------------------------------
    async def _read(self) -> None:
        try:
            while True:
                message = _decode(await self.recv_raw())
                if isinstance(message, dict):
                    self._translate(message)
        except UpstreamClosed as exc:
            self.end(exc.reason, exc.code)
        except (msgspec.DecodeError, ValueError) as exc:
            self.end(f"the upstream sent an unreadable message: {exc}", 1011)

    def _translate(self, message: dict[str, Any]) -> None:
        if "setupComplete" in message:
            self.setup_done.set()
        if isinstance(message.get("usageMetadata"), dict):
            self.usage = message["usageMetadata"]
        content = message.get("serverContent")
        if isinstance(content, dict):
            self._content(content)
        call = message.get("toolCall")
        if isinstance(call, dict):
            writer = self._writer()
            for fc in call.get("functionCalls") or []:
                call_id = str(fc.get("id") or new_id("call"))
                self.calls[call_id] = str(fc.get("name", ""))
                writer.function_call(call_id, self.calls[call_id], _encode(fc.get("args") or {}).decode())
            self._finish("completed")

    def _content(self, content: dict[str, Any]) -> None:
        heard = (content.get("inputTranscription") or {}).get("text")
        if heard:
            self.heard.append(heard)
        if content.get("interrupted"):
            self.emit(event("input_audio_buffer.speech_started", audio_start_ms=0, item_id=new_id("item")))
            if self.writer is not None:
                self._finish("cancelled")
            return
        for part in (content.get("modelTurn") or {}).get("parts") or []:
            if not isinstance(part, dict) or part.get("thought"):
                continue
            writer = self._writer()
            if self.cancelled:
                continue
            inline = part.get("inlineData")
            if isinstance(inline, dict) and str(inline.get("mimeType", "")).startswith("audio/pcm"):
                match = _RATE.search(str(inline["mimeType"]))
                pcm = base64.b64decode(inline.get("data") or "")
                writer.audio_delta(audio.resample(pcm, int(match.group(1)) if match else 24_000, audio.OPENAI_RATE))
            elif isinstance(part.get("text"), str):
                writer.text_delta(part["text"])
        spoken = (content.get("outputTranscription") or {}).get("text")
        if spoken:
            writer = self._writer()
            if not self.cancelled:
                writer.text_delta(spoken)
        if content.get("turnComplete"):
            if self.writer is None and self.usage is not None:
                self.carry.add(usage_of(self.usage))  # the usage of a response already done
                self.usage = None
                return
            self._finish("cancelled" if self.cancelled else "completed")

    def _writer(self) -> ResponseWriter:
        self._flush_heard()
        if self.writer is None:
            audio_on = "audio" in (self.session.get("output_modalities") or ["audio"])
            self.writer = ResponseWriter(self.emit, audio=audio_on)
            self.writer.start()
        return self.writer

    def _flush_heard(self) -> None:
        if self.heard_item is not None and self.heard:
            transcript = "".join(self.heard).strip()
            self.emit(event("conversation.item.input_audio_transcription.completed", item_id=self.heard_item,
                            content_index=0, transcript=transcript))  # fmt: skip
            self.heard, self.heard_item = [], None

    def _finish(self, status: str) -> None:
        self._flush_heard()
        writer = self._writer()
        usage = usage_of(self.usage)
        usage.add(self.carry)
        self.carry, self.usage = RealtimeUsage(), None
        writer.finish(usage, status)
        self.writer, self.cancelled = None, False

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.reader
        await SocketUpstream.close(self)
