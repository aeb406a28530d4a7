"""Resolution safety: which URLs fetch.py and GeneratorContext refuse, follow, cap and clean up after."""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest
from PIL import Image

from generators.artifacts import ImageArtifact
from generators.context import GeneratorContext
from generators.errors import StorageError, UnsafeURLError
from generators.fetch import FetchPolicy, check_url, download

CAP = 256 * 1024
CHUNKED_TOTAL = 64 * 1024 * 1024  # what /chunked would send if nobody stopped reading


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # so /chunked can use Transfer-Encoding: chunked

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        srv: LoopbackServer = self.server.owner  # type: ignore[attr-defined]
        path, _, query = self.path.partition("?")
        srv.requests.append(path)
        if path.startswith("/file/") and path[6:] in srv.files:
            self._send(200, srv.files[path[6:]], {"Content-Type": "application/octet-stream"})
        elif path == "/redirect":
            self._send(302, b"", {"Location": unquote(query)})
        elif path == "/declared-huge":
            # Announce 1 GiB and send nothing: a client that reads the body hangs until its timeout.
            self.send_response(200)
            self.send_header("Content-Length", str(1024**3))
            self.end_headers()
            self.wfile.flush()
            srv.release.wait(30)
        elif path == "/chunked":
            self._send_chunked(srv)
        else:
            self._send(404, b"not here", {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_chunked(self, srv: LoopbackServer) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        srv.chunked_sent, srv.chunked_aborted = 0, False
        block = b"\0" * 65536
        try:
            while srv.chunked_sent < CHUNKED_TOTAL:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                srv.chunked_sent += len(block)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client hung up, which is what the size cap should do
            srv.chunked_aborted = True
        self.close_connection = True


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 in a thread: files, redirects, a lying length, an endless body."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.release = threading.Event()
        self.chunked_sent = 0
        self.chunked_aborted = False
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def add(self, name: str, body: bytes) -> str:
        self.files[name] = body
        return f"{self.base}/file/{name}"

    def redirect_to(self, target: str) -> str:
        return f"{self.base}/redirect?{quote(target, safe='')}"


@pytest.fixture(scope="module")
def server():
    srv = LoopbackServer()
    srv.thread.start()
    yield srv
    srv.release.set()
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture(scope="module")
def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 24), (200, 30, 60)).save(buf, "PNG")
    return buf.getvalue()


def _loopback_policy(*hosts: str, **kw) -> FetchPolicy:
    return FetchPolicy(allowed_hosts=frozenset(hosts or {"127.0.0.1"}), timeout=httpx.Timeout(5.0), **kw)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


REFUSED = [
    ("http://127.0.0.1/", "loopback"),
    ("http://localhost/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
    ("http://100.100.100.200/latest/meta-data/", "cloud metadata"),
    ("http://169.254.10.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://2130706433/", "loopback"),  # 127.0.0.1 written as one decimal number
    ("http://127.1/", "loopback"),  # and in short form
    ("http://100.64.0.1/", "private or reserved"),  # carrier-grade NAT
]
BAD_SCHEME_OR_SHAPE = [
    ("file:///etc/passwd", "only http and https"),
    ("ftp://example.com/x", "only http and https"),
    ("gopher://example.com:70/_GET%20/", "only http and https"),
    ("http:///no-host", "names no host"),
    ("http://127.0.0.1:99999/", "(?i)port out of range"),
]


@pytest.mark.parametrize(("url", "address_class"), REFUSED)
async def test_private_and_special_addresses_are_refused_naming_the_class_and_the_allow_list(url, address_class):
    with pytest.raises(UnsafeURLError) as info:
        await check_url(url, FetchPolicy())
    message = str(info.value)
    assert address_class in message
    assert "BOARDFLOW_ALLOWED_HOSTS" in info.value.hint


@pytest.mark.parametrize(("url", "why"), BAD_SCHEME_OR_SHAPE)
async def test_other_schemes_and_malformed_urls_are_refused(url, why):
    with pytest.raises(UnsafeURLError, match=why) as info:
        await check_url(url, FetchPolicy())
    assert info.value.hint


@pytest.mark.parametrize("url", ["http://93.184.215.14/a.png", "https://8.8.8.8:8443/x", "https://[2606:4700::1111]/"])
async def test_public_ip_literals_pass_the_check(url):
    await check_url(url, FetchPolicy())  # no exception, and no connection: the check never connects


async def test_allow_list_entry_with_a_port_admits_only_that_port(server):
    policy = _loopback_policy(f"127.0.0.1:{server.port}")
    await check_url(f"{server.base}/file/x", policy)
    with pytest.raises(UnsafeURLError, match="loopback"):
        await check_url(f"http://127.0.0.1:{server.port + 1}/", policy)


async def test_allow_listed_server_serves_real_bytes(server, png_bytes, tmp_path):
    url = server.add("ok.png", png_bytes)
    sha, size = await download(url, tmp_path / "ok.png", _loopback_policy())
    assert (tmp_path / "ok.png").read_bytes() == png_bytes
    assert (sha, size) == (hashlib.sha256(png_bytes).hexdigest(), len(png_bytes))


async def test_the_same_server_is_refused_when_not_allow_listed(server, png_bytes, tmp_path):
    url = server.add("nope.png", png_bytes)
    with pytest.raises(UnsafeURLError, match="loopback"):
        await download(url, tmp_path / "nope.png", FetchPolicy())
    assert _leftovers(tmp_path) == []


async def test_redirects_within_the_allow_list_are_followed(server, tmp_path):
    url = server.add("target.bin", b"followed")
    hop2 = server.redirect_to(url)
    await download(server.redirect_to(hop2), tmp_path / "t.bin", _loopback_policy())
    assert (tmp_path / "t.bin").read_bytes() == b"followed"


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("http://localhost:{port}/file/secret", "127.0.0.1"),
        ("http://[::1]:{port}/file/secret", "127.0.0.1"),
        ("http://127.0.0.1:{other}/file/secret", "127.0.0.1:{port}"),
        ("file:///etc/passwd", "127.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "127.0.0.1"),
    ],
)
async def test_a_redirect_out_of_the_allow_list_is_refused_after_the_hop(server, tmp_path, target, allowed):
    server.add("secret", b"internal only")
    target = target.format(port=server.port, other=server.port + 1)
    # The first hop is allow-listed; the redirect target must be checked on its own.
    policy = _loopback_policy(allowed.format(port=server.port))
    before = server.requests.count("/file/secret")
    with pytest.raises(UnsafeURLError):
        await download(server.redirect_to(target), tmp_path / "s.bin", policy)
    assert server.requests.count("/file/secret") == before  # never requested
    assert _leftovers(tmp_path) == []


async def test_too_many_redirects_are_refused(server, tmp_path):
    url = server.add("far.bin", b"x")
    for _ in range(3):
        url = server.redirect_to(url)
    with pytest.raises(UnsafeURLError, match="more than 2 redirects"):
        await download(url, tmp_path / "far.bin", _loopback_policy(max_redirects=2))


async def test_declared_length_over_the_cap_is_refused_before_the_body_is_read(server, tmp_path):
    # /declared-huge never sends its body: reading it would end in a ReadTimeout, not this refusal.
    with pytest.raises(UnsafeURLError, match="larger than the download cap"):
        await download(f"{server.base}/declared-huge", tmp_path / "huge.bin", _loopback_policy(max_bytes=CAP))
    assert _leftovers(tmp_path) == []


async def test_a_body_without_length_is_stopped_once_past_the_cap(server, tmp_path):
    with pytest.raises(UnsafeURLError, match="larger than the download cap"):
        await download(f"{server.base}/chunked", tmp_path / "endless.bin", _loopback_policy(max_bytes=CAP))
    assert _leftovers(tmp_path) == []
    # The client hung up long before the server's 64 MiB: only socket buffers' worth went out.
    deadline = time.monotonic() + 10
    while not server.chunked_aborted and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert server.chunked_aborted, "the client kept the endless body open"
    assert server.chunked_sent < CHUNKED_TOTAL // 4, f"server sent {server.chunked_sent} bytes past a {CAP} cap"


async def test_http_errors_are_reported_with_the_status(server, tmp_path):
    with pytest.raises(Exception, match="HTTP 404"):
        await download(f"{server.base}/missing", tmp_path / "m.bin", _loopback_policy())
    assert _leftovers(tmp_path) == []


# -- through GeneratorContext ------------------------------------------------------------------


def _http_image_artifact(url: str, data: bytes, sha: str | None = None) -> ImageArtifact:
    return ImageArtifact(
        sha256=sha or hashlib.sha256(data).hexdigest(),
        storage_url=url,
        format="png",
        size_bytes=len(data),
        width=40,
        height=24,
    )


@pytest.mark.parametrize(("url", "_"), REFUSED + BAD_SCHEME_OR_SHAPE[1:3])
async def test_context_refuses_the_same_urls_to_resolve_and_to_store(ctx, store, url, _):
    with pytest.raises(UnsafeURLError):
        await ctx.resolve_artifact(_http_image_artifact(url, b"x"))
    with pytest.raises(UnsafeURLError):
        await ctx.store_image_result(url)
    assert _leftovers(store.root / "objects") == []


async def test_file_urls_outside_the_store_are_refused(ctx, store, png_bytes, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(png_bytes)
    sneaky = f"{store.root.as_uri()}/../outside.png"  # climbs out of the store
    for url in ("file:///etc/passwd", outside.as_uri(), sneaky):
        with pytest.raises(UnsafeURLError, match="inside the"):
            await ctx.resolve_artifact(_http_image_artifact(url, png_bytes))
        with pytest.raises(UnsafeURLError, match="inside the"):
            await ctx.store_image_result(url)
    assert _leftovers(store.root / "objects") == []


async def test_context_resolves_and_stores_from_an_allow_listed_server(server, store, png_bytes):
    url = server.add("ctx.png", png_bytes)
    async with GeneratorContext(store, fetch_policy=_loopback_policy()) as ctx:
        path = await ctx.resolve_artifact(_http_image_artifact(url, png_bytes))
        assert path.read_bytes() == png_bytes
        stored = await ctx.store_image_result(url)
        assert (stored.width, stored.height, stored.format) == (40, 24, "png")
        assert stored.sha256 == hashlib.sha256(png_bytes).hexdigest()
        assert store.local_path(store.key_for(stored.storage_url)).read_bytes() == png_bytes


async def test_allow_listing_through_the_environment_works_as_the_hint_says(server, store, png_bytes, monkeypatch):
    url = server.add("env.png", png_bytes)
    monkeypatch.setenv("BOARDFLOW_ALLOWED_HOSTS", "example.org, 127.0.0.1")
    async with GeneratorContext(store) as ctx:
        assert (await ctx.resolve_artifact(_http_image_artifact(url, png_bytes))).read_bytes() == png_bytes


async def test_a_download_whose_sha256_does_not_match_is_refused_and_dropped(server, store, png_bytes):
    url = server.add("changed.png", png_bytes)
    claimed = hashlib.sha256(b"what the artifact was made from").hexdigest()
    async with GeneratorContext(store, fetch_policy=_loopback_policy()) as ctx:
        with pytest.raises(StorageError, match="does not hold artifact"):
            await ctx.resolve_artifact(_http_image_artifact(url, png_bytes, sha=claimed))
        scratch = ctx.temp_path().parent
        assert not any(p.read_bytes() == png_bytes for p in scratch.iterdir() if p.is_file())


async def test_scratch_files_are_removed_when_the_context_closes_even_after_an_error(server, store, png_bytes):
    url = server.add("tmp.png", png_bytes)
    with pytest.raises(RuntimeError, match="generation broke"):
        async with GeneratorContext(store, fetch_policy=_loopback_policy()) as ctx:
            resolved = await ctx.resolve_artifact(_http_image_artifact(url, png_bytes))
            await ctx.store_image_result(png_bytes)  # bytes go through a scratch file too
            scratch = resolved.parent
            assert resolved.exists() and len(list(scratch.iterdir())) >= 2
            raise RuntimeError("generation broke")
    assert not scratch.exists()
    assert _leftovers(store.root / "tmp") == []  # the store's own staging is clean too


async def test_refused_downloads_leave_nothing_in_the_scratch_folder(server, store):
    async with GeneratorContext(store, fetch_policy=_loopback_policy(max_bytes=CAP)) as ctx:
        scratch = ctx.temp_path().parent
        with pytest.raises(UnsafeURLError):
            await ctx.store_image_result(f"{server.base}/chunked")
        with pytest.raises(UnsafeURLError):
            await ctx.store_image_result(server.redirect_to(f"http://localhost:{server.port}/file/tmp.png"))
        assert _leftovers(scratch) == []
    assert not scratch.exists()
