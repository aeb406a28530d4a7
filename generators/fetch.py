"""Safe downloads: http(s) to public addresses only, each hop resolved once and dialled at the checked address."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlparse

import httpx

from .credentials import redact
from .errors import BoardflowError, InputError, TransientProviderError, UnsafeURLError, shorten
from .net.addresses import IP, refused_ip
from .net.bodies import IDENTITY, save_body
from .net.pinned import PinnedTransport
from .settings import get_settings

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the operating system gives for `host` (getaddrinfo, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = []
    for *_, sockaddr in infos:
        if not isinstance(sockaddr[0], str):  # (int, bytes): an IPv6 answer to a Python built without IPv6
            raise UnsafeURLError(f"Refusing to fetch from {host}: it resolves to an address that cannot be checked.")
        addresses.append(sockaddr[0])
    return addresses


@dataclass(frozen=True)
class FetchPolicy:
    """What resolution may read besides the store. `allowed_hosts` lifts the address check for named hosts
    only; `allowed_s3` ("bucket" or "bucket/prefix") and `allowed_folders` admit S3 and file:// inputs."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_s3: frozenset[str] = frozenset()
    allowed_folders: tuple[Path, ...] = ()
    max_bytes: int = 2 * 1024**3
    max_redirects: int = 5
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(60.0, connect=10.0))
    resolver: Resolver = system_resolver  # name -> addresses; tests pass one that answers like a hostile DNS
    tls: ssl.SSLContext | None = None  # None: verify against certifi's CA bundle

    @classmethod
    def from_settings(cls) -> FetchPolicy:
        s = get_settings()
        return cls(
            allowed_hosts=frozenset(s.allowed_hosts),
            allowed_s3=frozenset(s.allowed_s3),
            allowed_folders=s.allowed_folders,
            max_bytes=s.max_download_bytes,
        )

    def admits_s3(self, bucket: str, key: str) -> bool:
        """True when `s3://bucket/key` lies in an allow-listed bucket, or under an allow-listed bucket/prefix."""
        for entry in self.allowed_s3:
            allowed_bucket, _, prefix = entry.strip("/").partition("/")
            if bucket == allowed_bucket and (not prefix or key.lstrip("/").startswith(prefix.rstrip("/") + "/")):
                return True
        return False

    def admits_folder(self, path: Path) -> bool:
        """True when `path` (symlinks resolved) lies inside an allow-listed folder."""
        return any(path.is_relative_to(folder) for folder in self.allowed_folders)

    def admits(self, host: str, port: int) -> bool:
        """True when `host`, or exactly `host:port`, is allow-listed (an entry with a port admits only it)."""
        entries = {entry.strip().lower() for entry in self.allowed_hosts}
        named = f"[{host}]" if ":" in host else host
        return bool(host) and bool({host, named, f"{named}:{port}"} & entries)


async def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuse `url` unless it is http(s) to a public address (or an explicitly allowed host); resolves its name."""
    host, port = _check_shape(url, policy)
    await checked_addresses(host, port, policy, url)


def _check_shape(url: str, policy: FetchPolicy) -> tuple[str, int]:
    """The URL's (host, port) once its scheme, host and port are sound and a literal address is allowed."""
    try:
        parsed = urlparse(url)
        port = parsed.port  # raises on a port out of range, which httpx would also refuse later
    except ValueError as exc:
        raise UnsafeURLError(f"Refusing to fetch {shorten(url)}: {exc}.") from None
    if parsed.scheme not in ("http", "https"):
        raise UnsafeURLError(f"Refusing to fetch {shorten(url)}: only http and https URLs may be downloaded.")
    host = (parsed.hostname or "").lower()
    if not host:
        raise UnsafeURLError(f"Refusing to fetch {shorten(url)}: it names no host.")
    port = port or (443 if parsed.scheme == "https" else 80)
    if (literal := _literal(host)) is not None:
        _refuse_unless_public(host, port, [literal], policy, url)  # no DNS: refused before any connection
    return host, port


async def checked_addresses(host: str, port: int, policy: FetchPolicy, url: str) -> list[IP]:
    """Resolve `host` once and return its addresses, refusing when any is not public (unless allow-listed)."""
    if (literal := _literal(host)) is not None:
        addresses = [literal]
    else:
        try:
            answers = await policy.resolver(host, port)
        except (OSError, UnicodeError, ValueError) as exc:
            raise InputError(
                f"Cannot resolve host {shorten(host, 100)} of {shorten(url)} ({exc}).",
                hint="Check the host name in the URL; if it is right, check this machine's DNS.",
            ) from None
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in answers]
    _refuse_unless_public(host, port, addresses, policy, url)
    return addresses


def _refuse_unless_public(host: str, port: int, addresses: list[IP], policy: FetchPolicy, url: str) -> None:
    if policy.admits(host, port):
        return
    for ip in addresses:
        if reason := refused_ip(ip):
            raise UnsafeURLError(
                f"Refusing to fetch {shorten(url)}: {host} resolves to {ip}, {reason}.",
                hint=f"If you trust this host, add {host!r} to BOARDFLOW_ALLOWED_HOSTS "
                "(comma-separated; an entry `host:port` admits that one port only).",
            )


def _literal(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, ssl.SSLCertVerificationError):
        seen = seen.__cause__ or seen.__context__
    return seen


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verified TLS context for every download: building one loads the CA bundle, ~40 ms that block the loop."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


async def download(url: str, dest: Path, policy: FetchPolicy, headers: dict[str, str] | None = None) -> tuple[str, int]:
    """Stream `url` into `dest` (atomically), following checked redirects; returns (sha256, size).

    Every hop is checked, and its connection goes to the very address the check passed (see net/pinned.py).
    """

    async def lookup(host: str, port: int) -> list[IP]:
        return await checked_addresses(host, port, policy, url)

    transport = PinnedTransport(lookup, verify=policy.tls or _tls_context())
    # identity: nothing for a decoder to inflate (a server that compresses anyway is decoded in bounded steps)
    headers = {**(headers or {}), **IDENTITY}
    try:
        async with httpx.AsyncClient(transport=transport, timeout=policy.timeout) as client:
            for _hop in range(policy.max_redirects + 1):
                _check_shape(url, policy)
                async with client.stream("GET", url, follow_redirects=False, headers=headers) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers["location"])
                        continue
                    _raise_for_status(response, url)
                    return await _save(response, url, dest, policy)
    except httpx.InvalidURL as exc:
        raise UnsafeURLError(
            f"Refusing to fetch {shorten(url)}: it is not a valid URL ({exc}).",
            hint="Check the URL (or the redirect that led to it); it may have been cut or mangled.",
        ) from None
    except httpx.HTTPError as exc:
        raise _failed(url, exc) from None
    raise UnsafeURLError(f"Refusing {shorten(url)}: more than {policy.max_redirects} redirects.")


def _failed(url: str, exc: httpx.HTTPError) -> BoardflowError:
    """A transport fault as one of ours: dropped connections, timeouts and broken HTTP are worth a retry."""
    host = urlparse(url).hostname or "download"
    detail = redact(str(exc)) or type(exc).__name__
    if bad_certificate := _certificate_error(exc):
        return InputError(
            f"The TLS certificate of {host} is not valid for it ({bad_certificate.verify_message}).",
            hint="Check the URL's host; a certificate for another name means the server is not the one it names.",
        )
    if isinstance(exc, httpx.TimeoutException):
        return TransientProviderError(f"the download of {shorten(url)} timed out ({detail})", provider=host)
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        what = "broke the HTTP protocol" if isinstance(exc, httpx.RemoteProtocolError) else "could not be reached"
        return TransientProviderError(
            f"the server of {shorten(url)} {what} ({detail})",
            provider=host,
            hint="boardflow retries this; if it persists, check that the URL serves the file in a browser.",
        )
    return InputError(
        f"Download of {shorten(url)} failed: {detail} ({type(exc).__name__}).",
        hint="Check the URL; if it is right, the server does not speak HTTP the way downloads need.",
    )


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
    return f"Refusing {shorten(url)}: it is larger than the download cap of {policy.max_bytes / 1024**2:.0f} MiB."
