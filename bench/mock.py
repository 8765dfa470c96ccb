"""A fast mock OpenAI upstream: raw asyncio protocol + httptools on uvloop, replies prebuilt and cached.

    python -m bench.mock [--port 0] [--chunks 10] [--chunk-delay-ms 0] [--video-seconds 0]

Prints `READY <port>` once listening. Endpoints (OpenAI shapes):
    POST /v1/chat/completions     non-stream, or SSE (`stream: true`) with N content chunks
    POST /v1/embeddings           1536 floats per input (`encoding_format: base64` honoured)
    POST /v1/images/generations   one tiny PNG, as `b64_json` or a `url` served by GET /files/…
    POST /v1/videos, GET /v1/videos/{id}, GET /v1/videos/{id}/content   a job that completes after
                                  `--video-seconds` (0: at once); content is a few bytes of MP4 header
    GET /v1/models, GET /healthz

A model name can carry its own stream shape: `mock-chat:c20:d10` streams 20 chunks 10 ms apart (the
gateway's channel maps a public model onto such an upstream name).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import random
import re
import signal
import struct
import sys
import time
from typing import Any

import httptools
import msgspec

_encode = msgspec.json.Encoder().encode
PNG_1x1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
MP4_STUB = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
EMBEDDING_DIMS = 1536


class Request(msgspec.Struct):
    model: str = ""
    stream: bool = False
    input: Any = None
    encoding_format: str | None = None
    response_format: str | None = None
    prompt: str = ""
    seconds: str = "4"
    size: str = "720x1280"


_decode_request = msgspec.json.Decoder(Request).decode


def _head(status: int, content_type: bytes, length: int | None, keep_alive: bool = True) -> bytes:
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}.get(status, b"OK")
    lines = [b"HTTP/1.1 %d %s" % (status, reason), b"content-type: " + content_type]
    lines.append(b"content-length: %d" % length if length is not None else b"transfer-encoding: chunked")
    if not keep_alive:
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _json_response(payload: Any, status: int = 200) -> bytes:
    body = _encode(payload)
    return _head(status, b"application/json", len(body)) + body


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def stream_shape(model: str, chunks: int, delay_ms: float) -> tuple[int, float]:
    """`name:c20:d10` → (20, 10.0); anything not given keeps the server's default."""
    for part in model.split(":")[1:]:
        if part[:1] == "c" and part[1:].isdigit():
            chunks = int(part[1:])
        elif part[:1] == "d":
            delay_ms = float(part[1:])
    return chunks, delay_ms


class Mock:
    def __init__(self, chunks: int, chunk_delay_ms: float, video_seconds: float) -> None:
        self.chunks = chunks
        self.chunk_delay_ms = chunk_delay_ms
        self.video_seconds = video_seconds
        self._cache: dict[Any, Any] = {}
        self._videos: dict[str, tuple[float, dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        rng = random.Random(8)
        vector = [rng.uniform(-0.1, 0.1) for _ in range(EMBEDDING_DIMS)]
        self._vector_json = vector
        self._vector_b64 = base64.b64encode(struct.pack(f"<{EMBEDDING_DIMS}f", *vector)).decode()

    # --- chat ---

    def chat(self, req: Request) -> bytes:
        key = ("chat", req.model)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = _json_response(
                {
                    "id": "chatcmpl-mock",
                    "object": "chat.completion",
                    "created": 1_700_000_000,
                    "model": req.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "Hello from the bench mock upstream."},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
                }
            )
        return bytes(hit)

    def stream_frames(self, model: str) -> tuple[list[bytes], float]:
        """Response head + role chunk, one frame per content chunk, and the tail (finish, usage, [DONE])."""
        key = ("stream", model)
        hit = self._cache.get(key)
        if hit is None:
            chunks, delay_ms = stream_shape(model, self.chunks, self.chunk_delay_ms)

            def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
                payload = {
                    "id": "chatcmpl-mock",
                    "object": "chat.completion.chunk",
                    "created": 1_700_000_000,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                }
                return _chunk(b"data: " + _encode(payload) + b"\n\n")

            usage = {
                "id": "chatcmpl-mock",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "choices": [],
                "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks},
            }
            head = _head(200, b"text/event-stream", None) + event({"role": "assistant", "content": ""})
            frames = [head] + [event({"content": f" tok{i}"}) for i in range(chunks)]
            tail = (
                event({}, "stop")
                + _chunk(b"data: " + _encode(usage) + b"\n\n")
                + _chunk(b"data: [DONE]\n\n")
                + b"0\r\n\r\n"
            )
            hit = self._cache[key] = ([*frames, tail], delay_ms / 1000)
        return hit  # type: ignore[no-any-return]

    # --- embeddings ---

    def embeddings(self, req: Request) -> bytes:
        count = len(req.input) if isinstance(req.input, list) and req.input and isinstance(req.input[0], str) else 1
        key = ("emb", req.model, req.encoding_format == "base64", count)
        hit = self._cache.get(key)
        if hit is None:
            vector = self._vector_b64 if req.encoding_format == "base64" else self._vector_json
            hit = self._cache[key] = _json_response(
                {
                    "object": "list",
                    "data": [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)],
                    "model": req.model,
                    "usage": {"prompt_tokens": 8 * count, "total_tokens": 8 * count},
                }
            )
        return bytes(hit)

    # --- images and videos ---

    def image(self, req: Request, host: str) -> bytes:
        if req.response_format == "url":
            item = {"url": f"http://{host}/files/image.png"}
        else:
            item = {"b64_json": base64.b64encode(PNG_1x1).decode()}
        return _json_response({"created": int(time.time()), "data": [item]})

    def create_video(self, req: Request) -> bytes:
        video_id = f"video_mock{next(self._ids):012d}"
        video = {
            "id": video_id,
            "object": "video",
            "model": req.model or "sora-2",
            "status": "queued",
            "progress": 0,
            "created_at": int(time.time()),
            "completed_at": None,
            "expires_at": None,
            "prompt": req.prompt,
            "size": req.size,
            "seconds": req.seconds,
            "remixed_from_video_id": None,
            "error": None,
        }
        self._videos[video_id] = (time.monotonic(), video)
        return _json_response(video)

    def get_video(self, video_id: str) -> bytes:
        found = self._videos.get(video_id)
        if found is None:
            return _not_found(f"No video {video_id}.")
        created, video = found
        age = time.monotonic() - created
        if age >= self.video_seconds:
            now = int(time.time())
            video.update(status="completed", progress=100, completed_at=video["completed_at"] or now)
            video["expires_at"] = video["completed_at"] + 3600
        else:
            video.update(status="in_progress", progress=int(100 * age / self.video_seconds))
        return _json_response(video)

    def video_content(self, video_id: str) -> bytes:
        if video_id not in self._videos:
            return _not_found(f"No video {video_id}.")
        return _head(200, b"video/mp4", len(MP4_STUB)) + MP4_STUB


def _not_found(message: str) -> bytes:
    return _json_response(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}, 404
    )


def _form_fields(body: bytes) -> dict[str, str]:
    """The text fields of a multipart body (the OpenAI SDK posts videos as multipart)."""
    fields = {}
    for match in re.finditer(rb'name="([^"]+)"\r\n\r\n(.*?)\r\n--', body, re.S):
        fields[match.group(1).decode()] = match.group(2).decode(errors="replace")
    return fields


class _Connection(asyncio.Protocol):
    __slots__ = ("_body", "_headers", "_mock", "_parser", "_transport", "_url")

    def __init__(self, mock: Mock) -> None:
        self._mock = mock
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body = bytearray()
        self._headers: dict[bytes, bytes] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.close()

    def on_message_begin(self) -> None:
        self._url = b""
        self._body = bytearray()
        self._headers = {}

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        transport = self._transport
        assert transport is not None
        method = self._parser.get_method()
        path = self._url.split(b"?", 1)[0].decode()
        if path.startswith("/v1/"):
            path = path[3:]
        mock = self._mock
        if method == b"POST":
            body = bytes(self._body)
            content_type = self._headers.get(b"content-type", b"")
            if content_type.startswith(b"multipart/"):
                req = msgspec.convert(_form_fields(body), Request, strict=False)
            else:
                try:
                    req = _decode_request(body) if body else Request()
                except msgspec.DecodeError:
                    transport.write(
                        _json_response({"error": {"message": "bad json", "type": "invalid_request_error"}}, 400)
                    )
                    return
            if path == "/chat/completions":
                if req.stream:
                    frames, delay = mock.stream_frames(req.model)
                    if delay:
                        asyncio.get_running_loop().create_task(self._slow_stream(frames, delay))
                    else:
                        for frame in frames:
                            transport.write(frame)
                    return
                transport.write(mock.chat(req))
            elif path == "/embeddings":
                transport.write(mock.embeddings(req))
            elif path == "/images/generations":
                transport.write(mock.image(req, self._headers.get(b"host", b"127.0.0.1").decode()))
            elif path == "/videos":
                transport.write(mock.create_video(req))
            else:
                transport.write(_not_found(f"Unknown path {path}"))
        elif method == b"GET":
            parts = path.strip("/").split("/")
            if path in ("/healthz", "/models"):
                transport.write(_json_response({"object": "list", "data": []}))
            elif len(parts) == 2 and parts[0] == "videos":
                transport.write(mock.get_video(parts[1]))
            elif len(parts) == 3 and parts[0] == "videos" and parts[2] == "content":
                transport.write(mock.video_content(parts[1]))
            elif path.startswith("/files/"):
                transport.write(_head(200, b"image/png", len(PNG_1x1)) + PNG_1x1)
            else:
                transport.write(_not_found(f"Unknown path {path}"))
        else:
            transport.write(_not_found("Unknown method"))
        if not self._parser.should_keep_alive():
            transport.close()

    async def _slow_stream(self, frames: list[bytes], delay: float) -> None:
        transport = self._transport
        assert transport is not None
        transport.write(frames[0])
        for frame in frames[1:]:
            await asyncio.sleep(delay)
            if transport.is_closing():
                return
            transport.write(frame)


async def serve(port: int, mock: Mock, host: str = "127.0.0.1") -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(mock), host, port, backlog=4096, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=10, help="content chunks per streamed answer")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    parser.add_argument("--video-seconds", type=float, default=0.0, help="time until a video job completes")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        print("bench.mock: uvloop missing, using asyncio's loop", file=sys.stderr)
    asyncio.run(serve(args.port, Mock(args.chunks, args.chunk_delay_ms, args.video_seconds)))


if __name__ == "__main__":
    main()
