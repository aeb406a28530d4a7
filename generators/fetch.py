"""Safe downloads: http(s) only, no private/loopback/metadata addresses (checked on every hop), size cap."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlparse

import httpx

from .errors import InputError, TransientProviderError, UnsafeURLError
from .net.bodies import IDENTITY, save_body
from .settings import get_settings

# Cloud metadata endpoints are refused even when their range is otherwise allowed.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}


@dataclass(frozen=True)
class FetchPolicy:
    """What resolution may download. `allowed_hosts` lifts the address check for named hosts only."""

    allowed_hosts: frozenset[str] = frozenset()
    max_bytes: int = 2 * 1024**3
    max_redirects: int = 5
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(60.0, connect=10.0))

    @classmethod
    def from_settings(cls) -> FetchPolicy:
        s = get_settings()
        return cls(allowed_hosts=frozenset(s.allowed_hosts), max_bytes=s.max_download_bytes)

    def allows(self, url: str) -> bool:
        """True when the URL's host, or its exact host:port, is allow-listed (an entry with a port admits only it)."""
        parsed = urlparse(url)
        host = (parsed.hostname or "").lower()
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        entries = {entry.strip().lower() for entry in self.allowed_hosts}
        named = f"[{host}]" if ":" in host else host
        return bool(host) and bool({host, named, f"{named}:{port}"} & entries)


def _refused_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip in _METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified:  # 0.0.0.0 and :: reach this machine on Linux
        return "an unspecified address (it reaches this machine)"
    if ip.is_private or ip.is_reserved or ip.is_unspecified or ip.is_multicast or not ip.is_global:
        return "a private or reserved address"
    return None


async def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuse `url` unless it is http(s) to a public address (or an explicitly allowed host)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise UnsafeURLError(f"Refusing to fetch {url!r}: only http and https URLs may be downloaded.")
    host = (parsed.hostname or "").lower()
    if not host:
        raise UnsafeURLError(f"Refusing to fetch {url!r}: it names no host.")
    try:
        parsed.port  # noqa: B018 — raises on a port out of range, which httpx would also refuse later
    except ValueError as exc:
        raise UnsafeURLError(f"Refusing to fetch {url!r}: {exc}.") from exc
    if policy.allows(url):
        return
    try:
        literal = ipaddress.ip_address(host)
        addresses = [literal]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, parsed.port or 443, type=0)
        except OSError as exc:
            raise InputError(f"Cannot resolve host {host!r} of {url!r} ({exc}).") from exc
        addresses = []
        for *_, sockaddr in infos:
            address = sockaddr[0]
            if not isinstance(address, str):  # (int, bytes): an IPv6 answer to a Python built without IPv6
                raise UnsafeURLError(
                    f"Refusing to fetch {url!r}: {host} resolves to an address that cannot be checked."
                ) from None
            addresses.append(ipaddress.ip_address(address.split("%")[0]))
    for ip in addresses:
        if reason := _refused_ip(ip):
            raise UnsafeURLError(
                f"Refusing to fetch {url!r}: {host} resolves to {ip}, {reason}.",
                hint=f"If you trust this host, add {host!r} to BOARDFLOW_ALLOWED_HOSTS "
                "(comma-separated; an entry `host:port` admits that one port only).",
            )


def _check_peer(response: httpx.Response, url: str, policy: FetchPolicy) -> None:
    """Check the address actually connected to, so DNS that changes between check and connect is caught."""
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if policy.allows(url) or not peer:
        return
    if reason := _refused_ip(ipaddress.ip_address(peer[0].split("%")[0])):
        raise UnsafeURLError(f"Refusing {url!r}: the connection went to {peer[0]}, {reason}.")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verified TLS context for every download: building one loads the CA bundle, ~40 ms that block the loop."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


async def download(
    url: str,
    dest: Path,
    policy: FetchPolicy,
    client: httpx.AsyncClient | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[str, int]:
    """Stream `url` into `dest` (atomically), following checked redirects; returns (sha256, size)."""
    own = client is None
    client = client or httpx.AsyncClient(timeout=policy.timeout, verify=_tls_context())
    try:
        for _hop in range(policy.max_redirects + 1):
            await check_url(url, policy)
            # identity: nothing for a decoder to inflate (a server that compresses anyway is decoded in bounded steps)
            headers = {**(headers or {}), **IDENTITY}
            async with client.stream(
                "GET", url, follow_redirects=False, headers=headers, timeout=policy.timeout
            ) as response:  # the policy's, even on a shared client
                _check_peer(response, url, policy)
                if response.is_redirect:
                    url = urljoin(url, response.headers["location"])
                    continue
                _raise_for_status(response, url)
                return await _save(response, url, dest, policy)
        raise UnsafeURLError(f"Refusing {url!r}: more than {policy.max_redirects} redirects.")
    finally:
        if own:
            await client.aclose()


def _raise_for_status(response: httpx.Response, url: str) -> None:
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientProviderError(
            f"download of {url} failed", provider=urlparse(url).hostname or "download", status_code=response.status_code
        )
    if response.status_code >= 400:
        raise InputError(
            f"Download of {url} failed with HTTP {response.status_code}.",
            hint="Check that the URL is right and still valid (signed URLs expire).",
        )


async def _save(response: httpx.Response, url: str, dest: Path, policy: FetchPolicy) -> tuple[str, int]:
    def too_big() -> UnsafeURLError:
        return UnsafeURLError(_too_big(url, policy), hint="Raise BOARDFLOW_MAX_DOWNLOAD_MB if this is expected.")

    return await save_body(response, url, dest, policy.max_bytes, too_big)


def _too_big(url: str, policy: FetchPolicy) -> str:
    return f"Refusing {url!r}: it is larger than the download cap of {policy.max_bytes / 1024**2:.0f} MiB."
