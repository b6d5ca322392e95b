"""Alert targets: only public http(s) URLs, checked on the name's every resolved address."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from wahealth.monitor import targets
from wahealth.monitor.targets import (
    InvalidTarget,
    TargetRefused,
    TargetUnresolvable,
    check_target,
    is_public_address,
)


def resolving_to(*addresses: str) -> targets.Resolver:
    async def fake(host: str, port: int) -> list[str]:
        return list(addresses)

    return fake


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "file:///etc/passwd",
        "hooks.example.com/x",
        "https://",
        "https://user:pass@hooks.example.com/x",
        "gopher://hooks.example.com/",
        "https://hooks.example.com/" + "a" * 3000,
    ],
)
async def test_only_plain_http_urls_are_valid(url: str) -> None:
    with pytest.raises(InvalidTarget):
        await check_target(url, allow_private=True)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "2002:7f00:1::1",
        "2001:db8::1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "https://[::1]/hook", "http://169.254.169.254/latest"]
)
async def test_literal_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        await check_target(url, allow_private=False)


async def test_literal_private_address_allowed_when_configured() -> None:
    checked = await check_target("http://127.0.0.1:8080/hook", allow_private=True)
    assert (checked.url.host, checked.addresses) == ("127.0.0.1", ())


async def test_name_resolving_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(targets, "resolve", resolving_to("93.184.216.34", "10.0.0.7"))
    with pytest.raises(TargetRefused, match=r"10\.0\.0\.7"):
        await check_target("https://hooks.example.com/x", allow_private=False)


async def test_name_resolving_to_public_addresses_is_pinned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, int]] = []

    async def fake(host: str, port: int) -> list[str]:
        seen.append((host, port))
        return ["93.184.216.34", "2606:2800:220:1::1"]

    monkeypatch.setattr(targets, "resolve", fake)
    checked = await check_target("https://hooks.example.com/x", allow_private=False)
    assert checked.addresses == ("93.184.216.34", "2606:2800:220:1::1")
    assert seen == [("hooks.example.com", 443)]


async def test_localhost_resolves_to_loopback_and_is_refused() -> None:
    with pytest.raises(TargetRefused):
        await check_target("http://localhost:9/hook", allow_private=False)


async def test_unresolvable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # The system resolver, without asking a DNS server that may be slow or absent.
    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    with pytest.raises(TargetUnresolvable, match=r"no-such-host\.invalid"):
        await check_target("https://no-such-host.invalid/x", allow_private=False)


async def test_private_targets_allowed_skip_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    async def must_not_resolve(host: str, port: int) -> list[str]:
        raise AssertionError("resolved")

    monkeypatch.setattr(targets, "resolve", must_not_resolve)
    checked = await check_target("http://receiver.internal:8000/x", allow_private=True)
    assert checked.addresses == ()
