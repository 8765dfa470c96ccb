"""The SSRF guard: which URLs the gateway may call on a customer's behalf (webhooks), and at which
address.

A URL is checked in two stages. `parse_url` refuses what is wrong on its face: a scheme other than
https (http only where allowed), a user name or password, a port outside the allowed list, an IP
address written in decimal, octal, hex or short form, a malformed host. `UrlGuard.resolve` then
resolves the host once and refuses the URL if *any* address is not public, unless it lies in a
trusted network. The caller connects to the address returned and never looks the name up again, so
an answer that changes between check and connection (DNS rebinding) cannot redirect the request.

`ipaddress.is_global` alone is not enough: on Python 3.11 it calls NAT64 and 6to4 forms of private
addresses, and 192.0.0.8, global. So embedded IPv4 addresses are unwrapped and checked, and the
special-purpose ranges are listed here explicitly (Svix's list, plus a few).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2000
DEFAULT_PORTS = {"https": 443, "http": 80}

_RANGES: list[tuple[str, str]] = [
    ("0.0.0.0/8", "a 'this network' address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a carrier-grade NAT address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address (cloud metadata lives there)"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a 6to4 relay address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "an IPv4-compatible address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard address"),
    ("2001::/32", "a Teredo address"),
    ("2001:2::/48", "a benchmarking address"),
    ("2001:10::/28", "an ORCHID address"),
    ("2001:20::/28", "an ORCHID address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("5f00::/16", "a segment-routing address"),
    ("fc00::/7", "a private (unique local) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
]
BLOCKED: list[tuple[Network, str]] = [(ipaddress.ip_network(net), why) for net, why in _RANGES]
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class RefusedUrl(ValueError):
    """The URL may not be called; the message says why, in words fit for the customer."""


@dataclass(frozen=True, slots=True)
class Policy:
    allow_http: bool = False
    allowed_ports: frozenset[int] = frozenset({80, 443, 8443})
    trusted: tuple[Network, ...] = ()

    @classmethod
    def of(cls, allow_http: bool, allowed_ports: Iterable[int], trusted: Iterable[str]) -> Policy:
        return cls(allow_http, frozenset(allowed_ports), tuple(ipaddress.ip_network(n, strict=False) for n in trusted))

    def is_trusted(self, ip: IPAddress) -> bool:
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        return any(ip in net or (mapped is not None and mapped in net) for net in self.trusted)


@dataclass(frozen=True, slots=True)
class ParsedUrl:
    scheme: str
    host: str
    """ASCII (IDNA), lower case, no brackets."""
    port: int
    target: str
    """Path and query: what goes on the request line."""
    literal: IPAddress | None
    """The host, when it is an IP address."""

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if isinstance(self.literal, ipaddress.IPv6Address) else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def url_at(self, address: str) -> str:
        """The URL with the host replaced by `address` (the connection goes there)."""
        literal = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{literal}:{self.port}{self.target}"


@dataclass(frozen=True, slots=True)
class Destination:
    url: ParsedUrl
    address: str
    """The checked address to connect to."""


def address_refusal(ip: IPAddress) -> str | None:
    """Why `ip` may not be called, or None for a public address. Embedded IPv4 addresses
    (IPv4-mapped, NAT64, 6to4) are judged by the address they carry."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = address_refusal(embedded)
            return None if reason is None else f"{reason} (it embeds {embedded})"
    for network, why in BLOCKED:
        if ip.version == network.version and ip in network:
            return why
    if not ip.is_global or ip.is_multicast:
        return "not a public address"
    return None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        raise RefusedUrl("an IPv6 zone index is not allowed in a URL.")
    return ip


def _check_hostname(host: str) -> str:
    labels = host.split(".")
    if all(_NUMERIC_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        # 2130706433, 0x7f000001, 017700000001, 127.1: what resolvers read as an IP address.
        raise RefusedUrl("an IP address must be written in dotted-decimal form (like 203.0.113.7).")
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise RefusedUrl("its host is not a valid domain name.") from None
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in ascii_host.split(".")):
        raise RefusedUrl("its host is not a valid domain name.")
    return ascii_host


def parse_url(url: str, policy: Policy) -> ParsedUrl:
    """Check what can be checked without resolving; raises RefusedUrl."""
    if not url or len(url) > MAX_URL_LENGTH or not url.isprintable() or any(c in url for c in " \\"):
        raise RefusedUrl(f"it must be a URL of at most {MAX_URL_LENGTH} characters, without spaces.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RefusedUrl("it is not a valid URL (check the host and port).") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or (scheme == "http" and not policy.allow_http):
        raise RefusedUrl("it must be an https:// URL." if not policy.allow_http else "it must be an http(s) URL.")
    if "@" in parts.netloc:
        raise RefusedUrl("it must not contain a user name or password.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise RefusedUrl("it has no host.")
    literal = _ip_literal(host)
    if literal is None:
        host = _check_hostname(host)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return ParsedUrl(scheme, host, port or DEFAULT_PORTS[scheme], target, literal)


def check_addresses(url: ParsedUrl, addresses: list[str], policy: Policy) -> str:
    """The address to connect to, if every one the host resolved to may be called; else RefusedUrl."""
    if not addresses:
        raise RefusedUrl(f"{url.host} does not resolve to any address.")
    trusted = 0
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if policy.is_trusted(ip):
            trusted += 1
            continue
        reason = address_refusal(ip)
        if reason is not None:
            where = f"{ip} is" if url.literal is not None else f"{url.host} resolves to {ip},"
            raise RefusedUrl(f"{where} {reason}")
    if url.port not in policy.allowed_ports and trusted < len(addresses):
        allowed = ", ".join(str(p) for p in sorted(policy.allowed_ports))
        raise RefusedUrl(f"port {url.port} is not allowed (allowed: {allowed}).")
    return addresses[0]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class UrlGuard:
    """Checks URLs against a Policy, resolving host names with `resolver` (the system's by default)."""

    def __init__(self, policy: Policy, resolver: Resolver | None = None, timeout: float = 5.0) -> None:
        self.policy = policy
        self.resolver = resolver or system_resolver
        self.timeout = timeout

    async def resolve(self, url: str) -> Destination:
        """Parse, resolve once and check every address; raises RefusedUrl. No connection is made."""
        parsed = parse_url(url, self.policy)
        if parsed.literal is not None:
            addresses = [str(parsed.literal)]
        else:
            try:
                addresses = await asyncio.wait_for(self.resolver(parsed.host, parsed.port), self.timeout)
            except (OSError, TimeoutError, UnicodeError):
                raise RefusedUrl(f"{parsed.host} could not be resolved.") from None
        return Destination(parsed, check_addresses(parsed, addresses, self.policy))
