"""An httpx transport that connects only to addresses that passed the check, resolving each name once.

Checking a name and then letting the client resolve it again lets DNS answer differently the second
time (rebinding): the check sees a public address, the request goes to an internal one. Here the
request's host is looked up once, by `lookup`, which also refuses; the connection is made to the
address it returned, while the Host header and TLS (SNI and certificate verification) keep the name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from .addresses import IP

# (host, port) -> the checked addresses to dial, in order; raises when the name may not be fetched.
Lookup = Callable[[str, int], Awaitable[Sequence[IP]]]


class PinnedTransport(httpx.AsyncHTTPTransport):
    """Dial only what `lookup` returned for the request's host; one connection per request (no keep-alive).

    No keep-alive, because connections are pooled by the address dialled: a connection verified for one
    name must not be reused for another name served from the same address.
    """

    def __init__(self, lookup: Lookup, **kw: Any) -> None:
        super().__init__(limits=httpx.Limits(max_keepalive_connections=0), trust_env=False, **kw)
        self._lookup = lookup

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        addresses = await self._lookup(host, port)
        named = not _is_literal(host)
        failures: list[str] = []
        last: httpx.ConnectError | None = None
        for ip in addresses:
            extensions = {**request.extensions, "sni_hostname": host} if named else request.extensions
            pinned = httpx.Request(
                request.method,
                request.url.copy_with(host=str(ip)),
                headers=request.headers,  # Host: stays the name the URL gave
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return await super().handle_async_request(pinned)
            except httpx.ConnectError as exc:
                failures.append(f"{ip}: {exc}")
                last = exc
        tried = "; ".join(failures) or "no address"
        raise httpx.ConnectError(f"could not connect to {host} ({tried})", request=request) from last


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
