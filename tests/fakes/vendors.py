"""Mock Anthropic and Gemini servers on 127.0.0.1, built on MockUpstream.

Each checks requests against the rules its vendor documents (and refuses breaches with the vendor's
own error body, as the real API would), answers with `answer` (tests/fakes/scenario.py) in its own
format, and streams with its own SSE framing. Scripted replies (`script`) work as on MockUpstream.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from tests.fakes.scenario import Answer, anthropic_json, anthropic_sse, gemini_json, gemini_sse, openai_json, openai_sse
from tests.fakes.upstream import MockUpstream, Reply

ANTHROPIC_BLOCKS = {"text", "image", "document", "tool_use", "tool_result", "thinking"}
ANTHROPIC_FIELDS = {
    "model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k", "stop_sequences", "stream",
    "tools", "tool_choice", "metadata", "thinking", "service_tier",
}  # fmt: skip
GEMINI_FIELDS = {"contents", "systemInstruction", "tools", "toolConfig", "safetySettings", "generationConfig"}
GEMINI_PART_KINDS = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
GEMINI_PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$")


class ScriptedAnswers(MockUpstream):
    """An OpenAI-compatible mock that answers with `answer` (the OpenAI rendering of the scenario)."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = Answer()

    def reset(self) -> None:
        super().reset()
        self.answer = Answer()

    def default_reply(self, path: str, body: Any) -> Reply:
        if path.endswith("/chat/completions"):
            model = str(body.get("model"))
            return (
                Reply(sse=openai_sse(self.answer))
                if body.get("stream")
                else Reply(json=openai_json(self.answer, model))
            )
        return super().default_reply(path, body)


class AnthropicUpstream(ScriptedAnswers):
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def frame(self, item: Any) -> bytes:
        if isinstance(item, bytes):
            return item
        return f"event: {item['type']}\ndata: {json.dumps(item)}\n\n".encode()

    def default_reply(self, path: str, body: Any) -> Reply:
        model = str(body.get("model"))
        if body.get("stream"):
            return Reply(sse=anthropic_sse(self.answer, model))  # type: ignore[arg-type]
        return Reply(json=anthropic_json(self.answer, model))

    def check(self, request: web.Request, body: Any) -> Reply | None:
        problem = self._problem(request, body)
        if problem is None:
            return None
        return Reply(status=400, json={"type": "error", "error": {"type": "invalid_request_error", "message": problem}})

    @staticmethod
    def _problem(request: web.Request, body: Any) -> str | None:
        if request.path != "/v1/messages":
            return f"unknown path {request.path}"
        if not request.headers.get("x-api-key") or not request.headers.get("anthropic-version"):
            return "x-api-key and anthropic-version headers are required"
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return "model: field required"
        if extra := set(body) - ANTHROPIC_FIELDS:
            return f"{sorted(extra)[0]}: Extra inputs are not permitted"
        if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
            return "max_tokens: field required"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or messages[0].get("role") != "user":
            return "messages: the first message must use the user role"
        for i, m in enumerate(messages):
            if m.get("role") not in ("user", "assistant"):
                return f"messages.{i}.role: unexpected role {m.get('role')!r} (system goes in the top-level field)"
            if i and messages[i - 1]["role"] == m["role"]:
                return f"messages.{i}: roles must alternate between user and assistant"
            content = m.get("content")
            blocks = [] if isinstance(content, str) else content
            if not isinstance(blocks, list) or any(b.get("type") not in ANTHROPIC_BLOCKS for b in blocks):
                return f"messages.{i}.content: invalid content block"
            if any(b.get("type") == "text" and not b.get("text") for b in blocks):
                return f"messages.{i}: text content blocks must be non-empty"
        if "system" in body and not isinstance(body["system"], str | list):
            return "system: must be a string or a list of text blocks"
        if not 0 <= body.get("temperature", 0) <= 1:
            return "temperature: must be between 0 and 1"
        thinking = body.get("thinking")
        if thinking is not None:
            budget = thinking.get("budget_tokens", 0)
            if thinking.get("type") != "enabled" or budget < 1024 or budget >= body["max_tokens"]:
                return "thinking.budget_tokens: must be >= 1024 and less than max_tokens"
            if "temperature" in body:
                return "temperature may only be set to 1 when thinking is enabled"
        if "stop_sequences" in body and not isinstance(body["stop_sequences"], list):
            return "stop_sequences: must be a list of strings"
        for tool in body.get("tools") or []:
            if not tool.get("name") or not isinstance(tool.get("input_schema"), dict):
                return "tools: each tool needs a name and an input_schema"
        return None


class GeminiUpstream(ScriptedAnswers):
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1beta"

    def frame(self, item: Any) -> bytes:
        return item if isinstance(item, bytes) else b"data: " + json.dumps(item).encode() + b"\r\n\r\n"

    def default_reply(self, path: str, body: Any) -> Reply:
        match = GEMINI_PATH.match(path)
        model = match["model"] if match else "gemini"
        if match and match["method"] == "streamGenerateContent":
            return Reply(sse=gemini_sse(self.answer, model))  # type: ignore[arg-type]
        if path.endswith(":batchEmbedContents"):
            embeddings = [{"values": [0.5, -0.25, 0.125]} for _ in body.get("requests") or []]
            return Reply(json={"embeddings": embeddings})
        return Reply(json=gemini_json(self.answer, model))

    def check(self, request: web.Request, body: Any) -> Reply | None:
        problem = self._problem(request, body)
        if problem is None:
            return None
        return Reply(status=400, json={"error": {"code": 400, "message": problem, "status": "INVALID_ARGUMENT"}})

    @staticmethod
    def _problem(request: web.Request, body: Any) -> str | None:
        if not request.headers.get("x-goog-api-key"):
            return "API key not valid. Please pass a valid API key."
        if request.path.endswith(":batchEmbedContents"):
            return None if isinstance(body, dict) and body.get("requests") else "requests: required"
        match = GEMINI_PATH.match(request.path)
        if match is None:
            return f"unknown path {request.path}"
        if match["method"] == "streamGenerateContent" and request.query.get("alt") != "sse":
            return "this mock streams only with alt=sse"
        if isinstance(body, dict) and (extra := set(body) - GEMINI_FIELDS):
            return f'Invalid JSON payload received. Unknown name "{sorted(extra)[0]}"'
        contents = body.get("contents") if isinstance(body, dict) else None
        if not isinstance(contents, list) or not contents:
            return "contents is not specified"
        for i, content in enumerate(contents):
            if content.get("role") not in ("user", "model"):
                return f"contents[{i}].role: please use a valid role: user, model"
            parts = content.get("parts")
            if not isinstance(parts, list) or not parts:
                return f"contents[{i}].parts: must not be empty"
            for part in parts:
                kinds = GEMINI_PART_KINDS & set(part)
                if len(kinds) != 1 or set(part) - GEMINI_PART_KINDS - {"thought", "thoughtSignature"}:
                    return f"contents[{i}].parts: each part holds exactly one kind of data"
        system = body.get("systemInstruction")
        if system is not None and not (isinstance(system, dict) and system.get("parts")):
            return "systemInstruction: parts required"
        for tool in body.get("tools") or []:
            for fn in tool.get("functionDeclarations") or []:
                if not fn.get("name") or "additionalProperties" in json.dumps(fn.get("parameters") or {}):
                    return "tools: invalid function declaration"
        return None
