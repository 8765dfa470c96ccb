"""Mock realtime upstreams on 127.0.0.1: OpenAI Realtime (GA events) and Gemini Live
(`BidiGenerateContent`), each a websockets server in its own thread and event loop.

Both answer like local-realtime (same words, same usage), so one client test reads the same events
whichever upstream the gateway relays or translates. Each records what it received, and can be told
to refuse the handshake (`refuse_status`) or to drop the socket after N frames (`drop_after`).
"""

from __future__ import annotations

import asyncio
import base64
import threading
from dataclasses import dataclass, field
from typing import Any

import msgspec
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from app.realtime import audio
from app.realtime.events import ResponseWriter
from app.realtime.local import LocalRealtime
from app.realtime.schemas import RealtimeUsage, parse_client
from app.realtime.upstream import UpstreamClosed


@dataclass
class Seen:
    paths: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    closed_codes: list[int | None] = field(default_factory=list)


class RealtimeMock:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=type(self).__name__)
        self._server: Server | None = None
        self.port = 0
        self.reset()

    def reset(self) -> None:
        self.seen = Seen()
        self.refuse_status: int | None = None
        self.drop_after: int | None = None
        self.stall = False
        self.interrupt = False
        """Gemini mock: answers stop after their first word with `interrupted`."""
        """OpenAI mock: a response starts and goes on until response.cancel (then done, billed)."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> RealtimeMock:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._check, max_size=None)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        server = self._server
        if server is not None:
            # On the server's own loop: Server.close() creates a task there, which is not thread-safe.
            async def close() -> None:
                server.close()
                await server.wait_closed()

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.seen.paths.append(request.path)
        self.seen.authorizations.append(request.headers.get("Authorization"))
        if self.refuse_status is not None:
            body = b'{"error": {"message": "refused by the mock", "type": "server_error", "code": null}}'
            return Response(self.refuse_status, "Refused", Headers({"Content-Type": "application/json"}), body)
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            await self.serve(ws)
        except ConnectionClosed:
            pass
        finally:
            self.seen.closed_codes.append(ws.close_code)

    async def serve(self, ws: ServerConnection) -> None:
        raise NotImplementedError

    def dropping(self, count: int) -> bool:
        return self.drop_after is not None and count >= self.drop_after


class OpenAIRealtimeMock(RealtimeMock):
    """Speaks OpenAI's Realtime protocol itself: the gateway relays its frames."""

    async def serve(self, ws: ServerConnection) -> None:
        model = ws.request.path.partition("model=")[2] if ws.request else ""
        model_obj = LocalRealtime(model, 4096)
        count = 0

        async def pump() -> None:
            nonlocal count
            while True:
                try:
                    frame = await model_obj.recv()
                except UpstreamClosed:
                    return
                count += 1
                if self.dropping(count):
                    await ws.close(1011, "mock upstream failure")
                    return
                await ws.send(frame.decode() if isinstance(frame, bytes) else frame)

        task = asyncio.create_task(pump())
        stalled: ResponseWriter | None = None
        try:
            async for message in ws:
                event = parse_client(message)
                self.seen.frames.append(msgspec.json.decode(message))
                if self.stall and event.type == "response.create":
                    stalled = ResponseWriter(lambda frame: asyncio.ensure_future(ws.send(frame.decode())), audio=True)
                    stalled.start()
                    stalled.text_delta("Once")
                    continue
                if stalled is not None and event.type == "response.cancel":
                    stalled.finish(RealtimeUsage(text_in=10, text_out=1, audio_out=50), "cancelled")
                    stalled = None
                    continue
                await model_obj.send(event, message)
        finally:
            task.cancel()


class GeminiLiveMock(RealtimeMock):
    """Speaks Gemini Live: setup → setupComplete; realtimeInput audio (16 kHz) between activityStart
    and activityEnd, or clientContent with turnComplete, starts a turn; the answer comes as
    serverContent modelTurn parts (inlineData PCM16 at 24 kHz, or text), transcriptions, then
    turnComplete with usageMetadata. A text "call the weather tool" asks for a toolCall first."""

    async def serve(self, ws: ServerConnection) -> None:
        setup = msgspec.json.decode(await ws.recv())
        self.seen.frames.append(setup)
        modalities = setup.get("setup", {}).get("generationConfig", {}).get("responseModalities", ["AUDIO"])
        await ws.send(msgspec.json.encode({"setupComplete": {}}).decode())
        pcm = bytearray()
        context = 0
        count = 0

        async def send(message: dict[str, Any]) -> bool:
            nonlocal count
            count += 1
            if self.dropping(count):
                await ws.close(1011, "mock upstream failure")
                return False
            await ws.send(msgspec.json.encode(message).decode())
            return True

        async def answer(answer: str, text_in: int, audio_in: int) -> None:
            nonlocal context
            words = answer.split()
            if self.interrupt:
                # The user spoke over the answer: Gemini stops after the first word and says so.
                words = words[:1]
            for i, word in enumerate(words):
                delta = " " + word if i else word
                if "AUDIO" in modalities:
                    part = {"inlineData": {"mimeType": "audio/pcm;rate=24000",
                                           "data": base64.b64encode(audio.tone(word)).decode()}}  # fmt: skip
                    if not await send({"serverContent": {"modelTurn": {"parts": [part]}}}):
                        return
                    if not await send({"serverContent": {"outputTranscription": {"text": delta}}}):
                        return
                elif not await send({"serverContent": {"modelTurn": {"parts": [{"text": delta}]}}}):
                    return
            audio_out = -(-len(words) * 2) if "AUDIO" in modalities else 0  # 0.2 s a word, 1 token / 100 ms
            prompt = [{"modality": "TEXT", "tokenCount": text_in + context}]
            if audio_in:
                prompt.append({"modality": "AUDIO", "tokenCount": audio_in})
            response = [{"modality": "TEXT", "tokenCount": len(words)}]
            if audio_out:
                response.append({"modality": "AUDIO", "tokenCount": audio_out})
            total_in = text_in + context + audio_in
            total_out = len(words) + audio_out
            usage = {"promptTokenCount": total_in, "responseTokenCount": total_out,
                     "cachedContentTokenCount": context, "totalTokenCount": total_in + total_out,
                     "promptTokensDetails": prompt, "responseTokensDetails": response}  # fmt: skip
            context = total_in + total_out
            if self.interrupt:
                await send({"serverContent": {"interrupted": True}})
            await send({"serverContent": {"generationComplete": True}})
            await send({"serverContent": {"turnComplete": True}, "usageMetadata": usage})

        async for message in ws:
            body = msgspec.json.decode(message)
            self.seen.frames.append(body)
            realtime = body.get("realtimeInput")
            if realtime is not None:
                if "audio" in realtime:
                    pcm += base64.b64decode(realtime["audio"]["data"])
                if "activityEnd" in realtime:
                    ms = round(len(pcm) / 2 / 16_000 * 1000)
                    transcript = f"{ms} milliseconds of audio"
                    await send({"serverContent": {"inputTranscription": {"text": transcript}}})
                    audio_in = -(-ms // 100)
                    pcm.clear()
                    await answer(f"I heard {ms} milliseconds of audio", 0, audio_in)
            content = body.get("clientContent")
            if content is not None and content.get("turnComplete"):
                texts = [p.get("text", "") for t in content.get("turns", []) for p in t.get("parts", [])]
                said = " ".join(t for t in texts if t)
                if "weather tool" in said:
                    call = {"id": "call-1", "name": "get_weather", "args": {"city": "Paris"}}
                    await send({"toolCall": {"functionCalls": [call]}})
                    await send({"serverContent": {"turnComplete": True},
                                "usageMetadata": {"promptTokenCount": 4, "responseTokenCount": 2,
                                                  "totalTokenCount": 6}})  # fmt: skip
                    continue
                answer_text = "You said: " + said
                await answer(answer_text, len(answer_text.split()), 0)
            tool = body.get("toolResponse")
            if tool is not None:
                await answer("Thanks for the result", 0, 0)
