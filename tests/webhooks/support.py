"""Webhook test helpers: a receiver on 127.0.0.1 with scripted answers, a socket spy with a fake DNS,
and verification of a received request with both the `standardwebhooks` library and the OpenAI SDK."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from openai import OpenAI
from standardwebhooks import Webhook


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    stall: float = 0.0
    """Seconds to wait before answering (a receiver slower than the delivery timeout)."""
    hold: threading.Event | None = None
    """Answer only once the test sets it (`arrived` is set when the request came)."""
    arrived: threading.Event = field(default_factory=threading.Event)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A webhook receiver on 127.0.0.1. `script[path]` lists the answers to give, in order; once
    they are used up, every request gets `default`."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: dict[str, list[Reply]] = {}
        self.default = Reply()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    queue = receiver.script.get(self.path) or []
                    reply = queue.pop(0) if queue else receiver.default
                reply.arrived.set()
                if reply.hold is not None:
                    reply.hold.wait(60)
                if reply.stall:
                    time.sleep(reply.stall)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the sender stops reading after 64 KiB
                    self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.script.clear()
            self.default = Reply()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]


def verify_both(received: Received, secret: str) -> dict[str, Any]:
    """The request verifies with standardwebhooks and with the OpenAI SDK's unwrap; returns the event."""
    event: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    unwrapped = OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1").webhooks.unwrap(
        received.body, received.headers, secret=secret
    )
    assert unwrapped.type == event["type"] and unwrapped.id == event["id"]  # type: ignore[union-attr]
    return event


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


class SocketSpy:
    """Records every getaddrinfo and connect of this process; answers names in `dns` itself (a
    mutable fake DNS) and refuses any connection that is not to loopback, so nothing leaves the
    machine even if the code under test were wrong."""

    def __init__(self) -> None:
        self.dns: dict[str, list[str]] = {}
        self.lookups: list[str] = []
        self.connects: list[str] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> SocketSpy:
        real_getaddrinfo = socket.getaddrinfo
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
        spy = self

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else str(host)
            spy.lookups.append(name)
            if name in spy.dns:
                answers = []
                for ip in spy.dns[name]:
                    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
                    address = (ip, int(port or 0), 0, 0) if family == socket.AF_INET6 else (ip, int(port or 0))
                    answers.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address))
                return answers
            return real_getaddrinfo(host, port, *args, **kwargs)

        def guard(address: Any) -> None:
            if isinstance(address, tuple):
                spy.connects.append(str(address[0]))
                if not _is_loopback(str(address[0])):
                    raise ConnectionRefusedError(f"socket spy: no connection to {address[0]} from a test")

        def connect(sock: socket.socket, address: Any) -> None:
            guard(address)
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            guard(address)
            return real_connect_ex(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        return self

    def touched(self, address: str) -> bool:
        return address in self.connects
