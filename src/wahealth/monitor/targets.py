"""Which alert webhook URLs we are willing to call.

An alert target is a URL given by a tenant; calling it from inside our network
would let that tenant probe or poke internal services (server-side request
forgery). So only http(s) URLs are accepted and, unless the operator allows
private targets, every address the host name resolves to must be public. The
check runs when a subscription is made and again before each delivery, and
delivery then connects to the very address that was checked, so a host name
that re-resolves to a private address later (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the host name resolves to, as strings.
Resolver = Callable[[str, int], Awaitable[list[str]]]


class TargetError(Exception):
    """An alert target URL cannot be used."""


class InvalidTarget(TargetError):
    """The URL is not an absolute http(s) URL we accept; retrying will not help."""


class TargetRefused(TargetError):
    """The host is, or resolves to, an address that is not public."""


class TargetUnresolvable(TargetError):
    """The host name does not resolve (now); it may later."""


@dataclass(frozen=True, slots=True)
class CheckedTarget:
    """A URL that passed the checks; `addresses` are the public ones to connect to.

    `addresses` is empty when private targets are allowed: then the host is
    neither resolved nor pinned, and the HTTP client resolves it as usual.
    """

    url: httpx.URL
    addresses: tuple[str, ...]


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the system resolver, off the event loop)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetUnresolvable(f"cannot resolve host {host!r}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public_address(address: IPAddress) -> bool:
    """True for globally routable unicast addresses, looking through IPv4-in-IPv6 forms."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_public_address(embedded)
        if address.teredo is not None:
            return False
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_unspecified
    )


def parse_target(url: str) -> httpx.URL:
    """The URL if it is an absolute http(s) URL with a host and no credentials."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidTarget(f"URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise InvalidTarget(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise InvalidTarget(f"only http and https URLs are accepted, not {parsed.scheme or '?'!r}")
    if not parsed.host:
        raise InvalidTarget("the URL has no host")
    if parsed.userinfo:
        raise InvalidTarget("credentials in the URL are not accepted (alerts are signed instead)")
    return parsed


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


async def check_target(
    url: str, *, allow_private: bool, resolver: Resolver | None = None
) -> CheckedTarget:
    """Validate `url` and, unless `allow_private`, the addresses its host resolves to."""
    parsed = parse_target(url)
    if allow_private:
        return CheckedTarget(parsed, ())
    host = parsed.host
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if not is_public_address(literal):
            raise TargetRefused(f"{host} is not a public address")
        return CheckedTarget(parsed, (str(literal),))
    addresses = await (resolver or resolve)(host, _port(parsed))
    if not addresses:
        raise TargetUnresolvable(f"host {host!r} resolves to no address")
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError as exc:
            raise TargetRefused(f"{host} resolves to {address!r}, not an IP address") from exc
        if not is_public_address(ip):
            raise TargetRefused(f"{host} resolves to {ip}, which is not a public address")
    return CheckedTarget(parsed, tuple(addresses))
