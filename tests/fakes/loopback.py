"""A raw HTTP server on 127.0.0.1 for hostile answers: each path writes whatever bytes a test registered."""

from __future__ import annotations

import ssl
import threading
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO

Writer = Callable[[BinaryIO], None]


@dataclass
class Seen:
    """One request as the server read it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Sent:
    """How much of a streamed answer went out, and whether the client hung up before the end."""

    bytes: int = 0
    aborted: bool = False
    done: threading.Event = field(default_factory=threading.Event)


def head(status: int = 200, headers: dict[str, str] | None = None) -> bytes:
    """A status line and headers. The server closes every connection after one answer, and says so:
    without `Connection: close` a client may reuse the socket the server is closing and lose the next
    request ("Server disconnected without sending a response"), which made tests flaky."""
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in {"Connection": "close", **(headers or {})}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def answer(body: bytes, headers: dict[str, str] | None = None, status: int = 200) -> Writer:
    """A complete answer with a Content-Length."""

    def write(out: BinaryIO) -> None:
        out.write(head(status, {"Content-Length": str(len(body)), **(headers or {})}) + body)

    return write


def chunked(blocks: Callable[[], Iterable[bytes]], sent: Sent, headers: dict[str, str] | None = None) -> Writer:
    """A Transfer-Encoding: chunked answer from `blocks()`, counting what went out into `sent`."""

    def write(out: BinaryIO) -> None:
        sent.bytes, sent.aborted = 0, False
        try:
            out.write(head(200, {"Transfer-Encoding": "chunked", **(headers or {})}))
            for block in blocks():
                out.write(b"%x\r\n%s\r\n" % (len(block), block))
                sent.bytes += len(block)
            out.write(b"0\r\n\r\n")
            out.flush()
        except OSError:  # the client hung up, which is what a cap should make it do
            sent.aborted = True
        finally:
            sent.done.set()

    return write


def gzip_of_zeros(size: int) -> bytes:
    """A gzip member that inflates to `size` zero bytes (about a thousandth of that on the wire)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    return b"".join(packer.compress(block) for _ in range(size // len(block))) + packer.flush()


async def traced_peak(coro: Awaitable[object]) -> tuple[int, BaseException | None]:
    """Peak Python-heap bytes (zlib's buffers included) allocated while `coro` runs, and what it raised."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    raised = None
    try:
        await coro
    except BaseException as exc:  # noqa: BLE001 — the caller inspects it
        raised = exc
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak, raised


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _serve(self) -> None:
        server: RawServer = self.server.owner  # type: ignore[attr-defined]
        path = self.path.partition("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        server.seen.append(Seen(self.command, path, {k.lower(): v for k, v in self.headers.items()}))
        writer = server.routes.get(path) or answer(b"not here", status=404)
        try:
            writer(self.wfile)
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True

    do_GET = do_POST = _serve


class RawServer:
    """Start with `with RawServer() as srv:`; `srv.route(path, writer)` returns the URL of that path."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Writer] = {}
        self.seen: list[Seen] = []
        self.sni: list[str | None] = []  # the server name each TLS client asked for
        self.httpd = ThreadingHTTPServer((host, 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.netloc = f"{host}:{self.port}"
        self.base = f"{'https' if tls else 'http'}://{self.netloc}"

    def route(self, path: str, writer: Writer) -> str:
        self.routes[path] = writer
        return self.base + path

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def __enter__(self) -> RawServer:
        threading.Thread(target=self.httpd.serve_forever, name="raw-loopback", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
