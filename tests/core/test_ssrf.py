"""The SSRF guard: every refused form, the forms `ipaddress.is_global` misses, trusted networks, and a
real TLS connection pinned to the checked address with the name in SNI and Host."""

from __future__ import annotations

import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from app.core.http import create_webhook_client
from app.core.settings import Settings
from app.core.ssrf import Policy, RefusedUrl, UrlGuard, address_refusal, parse_url
from app.webhooks import delivery
from tests.support import write_self_signed
from tests.webhooks.support import SocketSpy

STRICT = Policy()

REFUSED_ADDRESSES = [
    "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
    "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3",
    "255.255.255.255", "224.0.0.1", "239.255.255.250", "240.0.0.1", "192.0.0.8", "192.0.0.170",
    "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1", "192.88.99.1",
    "::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
    "fd00::1", "fc00::1", "fe80::1", "fec0::1", "ff02::1", "2001:db8::1", "100::1", "2001::1",
    "64:ff9b::7f00:1", "64:ff9b::c0a8:0", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1",
    "2002:c0a8:1::1", "2002:7f00:1::1", "2002:a9fe:a9fe::1", "5f00::1", "3fff::1", "2001:2::1",
]  # fmt: skip
ALLOWED_ADDRESSES = ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["64:ff9b::c0a8:0", "2002:c0a8:1::1", "192.0.0.8"])
def test_forms_that_is_global_alone_would_let_through_are_refused(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED_ADDRESSES)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/x", "https"),
        ("file:///etc/passwd", "https"),
        ("gopher://hooks.example.com/", "https"),
        ("ftp://hooks.example.com/", "https"),
        ("https://user:pw@hooks.example.com/", "user name"),
        ("https://user@hooks.example.com/", "user name"),
        ("https://2130706433/", "dotted-decimal"),
        ("https://0x7f000001/", "dotted-decimal"),
        ("https://017700000001/", "dotted-decimal"),
        ("https://0177.0.0.1/", "dotted-decimal"),
        ("https://127.1/", "dotted-decimal"),
        ("https://0x7f.0.0.1/", "dotted-decimal"),
        ("https://hooks.example.123/", "dotted-decimal"),
        ("https://hooks.example.com:99999/", "valid URL"),
        ("https://hooks..example.com/", "domain name"),
        ("https://-hooks.example.com/", "domain name"),
        ("https://hooks example.com/", "without spaces"),
        ("https://hooks.example.com\\@evil/", "without spaces"),
        ("https:///path-only", "no host"),
        ("https://[fe80::1%25eth0]/", "zone"),
        ("https://" + "a" * 2000 + ".com/", "at most"),
    ],
)
def test_malformed_or_disguised_urls_are_refused_before_resolving(url: str, why: str) -> None:
    with pytest.raises(RefusedUrl, match=why):
        parse_url(url, STRICT)


def test_a_url_is_parsed_into_what_the_request_needs() -> None:
    url = parse_url("https://Hooks.Example.com./in?x=1#frag", STRICT)
    assert (url.scheme, url.host, url.port, url.target) == ("https", "hooks.example.com", 443, "/in?x=1")
    assert url.host_header == "hooks.example.com" and url.url_at("93.184.216.34") == "https://93.184.216.34:443/in?x=1"
    v6 = parse_url("https://[2606:4700::1111]:8443/", STRICT)
    assert v6.host_header == "[2606:4700::1111]:8443" and v6.url_at("2606:4700::1111").startswith("https://[2606:")
    assert parse_url("https://bücher.example/", STRICT).host == "xn--bcher-kva.example"
    assert parse_url("http://hooks.example.com/", Policy(allow_http=True)).port == 80


def fake_resolver(answers: dict[str, list[str]]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("no such host")
        return answers[host]

    return resolve


@pytest.mark.parametrize(
    ("answers", "why"),
    [
        (["10.0.0.7"], "private"),
        (["93.184.216.34", "127.0.0.1"], "loopback"),  # one bad address among good ones is enough
        (["169.254.169.254"], "link-local"),
        (["::ffff:192.168.0.1"], "private"),
        ([], "does not resolve"),
    ],
)
async def test_a_name_is_refused_if_any_address_it_resolves_to_is(answers: list[str], why: str) -> None:
    guard = UrlGuard(STRICT, fake_resolver({"hooks.example.com": answers}))
    with pytest.raises(RefusedUrl, match=why):
        await guard.resolve("https://hooks.example.com/in")


async def test_resolution_failure_and_literals_and_ports() -> None:
    guard = UrlGuard(STRICT, fake_resolver({"hooks.example.com": ["93.184.216.34"]}))
    destination = await guard.resolve("https://hooks.example.com/in")
    assert destination.address == "93.184.216.34" and destination.url.host == "hooks.example.com"
    with pytest.raises(RefusedUrl, match="could not be resolved"):
        await guard.resolve("https://unknown.example.com/")
    with pytest.raises(RefusedUrl, match="port 22 is not allowed"):
        await guard.resolve("https://hooks.example.com:22/")
    with pytest.raises(RefusedUrl, match=r"\[?::1\]? is a loopback"):
        await guard.resolve("https://[::1]/")
    assert (await guard.resolve("https://93.184.216.34:8443/")).address == "93.184.216.34"


async def test_trusted_networks_may_be_reached_on_any_port_and_nothing_else_is() -> None:
    policy = Policy.of(True, [443], ["10.20.0.0/16", "127.0.0.1/32"])
    guard = UrlGuard(policy, fake_resolver({"internal.corp": ["10.20.1.2"], "mixed.corp": ["10.20.1.2", "10.30.0.1"]}))
    assert (await guard.resolve("http://internal.corp:9000/hook")).address == "10.20.1.2"
    assert (await guard.resolve("http://127.0.0.1:8123/")).address == "127.0.0.1"
    with pytest.raises(RefusedUrl, match="private"):
        await guard.resolve("https://mixed.corp/")
    with pytest.raises(RefusedUrl, match="loopback"):
        await guard.resolve("http://127.0.0.2/")


async def test_the_system_resolver_is_used_through_getaddrinfo(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = SocketSpy().install(monkeypatch)
    spy.dns["hooks.example.com"] = ["93.184.216.34", "2606:4700::1111"]
    spy.dns["rebind.example.com"] = ["169.254.169.254"]
    guard = UrlGuard(STRICT)
    assert (await guard.resolve("https://hooks.example.com/")).address == "93.184.216.34"
    with pytest.raises(RefusedUrl, match="link-local"):
        await guard.resolve("https://rebind.example.com/")
    assert spy.lookups.count("hooks.example.com") == 1 and spy.connects == []
    with pytest.raises(RefusedUrl, match="loopback"):
        await guard.resolve("https://localhost/")  # from /etc/hosts, no DNS


# --- TLS: the connection goes to the checked address; the certificate is checked against the name.


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_self_signed(tmp_path_factory.mktemp("tls"), "hooks.test")


@pytest.fixture
def tls_receiver(tls_files: tuple[Path, Path]) -> Iterator[dict[str, Any]]:
    seen: dict[str, Any] = {}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    context.sni_callback = lambda _sock, name, _ctx: seen.__setitem__("sni", name)  # type: ignore[assignment]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen["host"] = self.headers["host"]
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen["port"] = server.server_address[1]
    yield seen
    server.shutdown()
    server.server_close()


async def test_tls_goes_to_the_checked_address_with_the_name_in_sni_and_host(
    tls_receiver: dict[str, Any], tls_files: tuple[Path, Path], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SocketSpy().install(monkeypatch)
    spy.dns["hooks.test"] = ["127.0.0.1"]
    guard = UrlGuard(Policy.of(False, [443], ["127.0.0.1/32"]))
    verify = ssl.create_default_context(cafile=str(tls_files[0]))
    async with create_webhook_client(settings, verify=verify) as http:
        deps = delivery.WebhookDeps(settings, None, None, http, guard)  # type: ignore[arg-type]
        claim = delivery.Claim("whd_x", 1, None, f"https://hooks.test:{tls_receiver['port']}/in", "evt_x", b"{}",
                               ["whsec_" + "A" * 44])  # fmt: skip
        outcome = await delivery.attempt(deps, claim)
    assert outcome.status == 204 and outcome.address == "127.0.0.1", outcome
    assert tls_receiver["sni"] == "hooks.test"
    assert tls_receiver["host"] == f"hooks.test:{tls_receiver['port']}"
    assert spy.lookups.count("hooks.test") == 1 and spy.connects == ["127.0.0.1"]
    # Without the name in SNI the certificate would not match: the same server, by address, is refused.
    async with create_webhook_client(settings, verify=verify) as http:
        deps = delivery.WebhookDeps(settings, None, None, http, guard)  # type: ignore[arg-type]
        by_ip = delivery.Claim("whd_y", 1, None, f"https://127.0.0.1:{tls_receiver['port']}/in", "evt_y", b"{}",
                               ["whsec_" + "A" * 44])  # fmt: skip
        refused = await delivery.attempt(deps, by_ip)
    assert refused.status is None and "certificate" in (refused.error or "").lower(), refused
