"""A read-only HTTP server for the artifact store on loopback, so the Prefect UI can open, play and download media.

`GET`/`HEAD /objects/<sha256>` answers with the stored object of that hash: ranges (what a browser's
<video> asks for), its content type and a readable download name. A local store's files are sent
from disk with sendfile (nothing is read into memory); an S3 store's are a redirect to a
presigned URL, so the bytes go straight from S3 to the browser. Nothing else is served: no
listing, no sidecars, no path but those two.

The standard library's ThreadingHTTPServer is enough here: one thread per connection suits the
handful of connections a browser opens, file streaming is blocking I/O anyway, and it runs in a
thread of `boardflow server` without an event loop or an ASGI stack beside Prefect's own.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from generators.errors import BoardflowError, ConfigurationError
from generators.storage import ArtifactStore, sidecar_key

OBJECT_PATH = re.compile(r"/objects/([0-9a-f]{64})")
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
REDIRECT_SECONDS = 3600  # each request signs afresh, so a short life is enough
# Types by extension where Python's table is missing one or gives a legacy name browsers may not play.
TYPES = {
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "txt": "text/plain; charset=utf-8",
    "safetensors": "application/octet-stream",
}


class Unsatisfiable(Exception):
    """A Range header none of whose bytes exist in the object (HTTP 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (first, last) byte, inclusive, that `header` asks for; None to send the whole object.

    One range only: a list of ranges, or a header that does not parse, is ignored and the whole
    object sent, as RFC 9110 §14.2 allows.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, dash, last = header[6:].strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()) or (first and not first.isdigit()):
        return None
    if last and not last.isdigit():
        return None
    if not first:  # the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise Unsatisfiable
        return max(size - n, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        raise Unsatisfiable
    return (start, end) if end >= start else None


def content_type(key: str) -> str:
    """The type of a stored file by its extension; anything a browser might run (HTML, SVG…) is plain bytes."""
    ext = Path(key).suffix.lstrip(".").lower()
    guessed = TYPES.get(ext) or mimetypes.guess_type(key)[0] or ""
    return (
        guessed
        if guessed.startswith(("video/", "audio/", "image/", "text/plain")) and "svg" not in guessed
        else ("application/octet-stream")
    )


@dataclass(frozen=True)
class Found:
    key: str
    filename: str
    content_type: str


class ObjectIndex:
    """sha256 → the object's key, download name and type; remembered, since objects never change."""

    def __init__(self, store: ArtifactStore, size: int = 4096) -> None:
        self.store = store
        self._found: OrderedDict[str, Found] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def find(self, sha: str) -> Found | None:
        with self._lock:
            if sha in self._found:
                self._found.move_to_end(sha)
                return self._found[sha]
        found = asyncio.run(self._look_up(sha))
        if found:
            with self._lock:
                self._found[sha] = found
                while len(self._found) > self._size:
                    self._found.popitem(last=False)
        return found

    def forget(self, sha: str) -> None:
        with self._lock:
            self._found.pop(sha, None)

    async def _look_up(self, sha: str) -> Found | None:
        folder = f"objects/{sha[:2]}"
        local = self.store.local_path(folder)
        if local is not None:
            names = [p.name for p in local.glob(f"{sha}.*")] if local.is_dir() else []
            keys = [f"{folder}/{n}" for n in names]
        else:
            keys = await self.store.list_keys(f"{folder}/{sha}.")
        keys = sorted(k for k in keys if not k.endswith(".json"))  # the JSON beside it is its sidecar
        if not keys:
            return None
        key = keys[0]
        sidecar = await self.store.read_json(sidecar_key(sha)) or {}
        return Found(key, download_name(key, sha, sidecar), content_type(key))


def download_name(key: str, sha: str, sidecar: dict) -> str:
    """`<step>-<sha256[:12]>.<ext>` from the sidecar's latest maker (e.g. final-3f2a9c1b7e4d.mp4)."""
    ext = Path(key).suffix
    makers = [m for m in sidecar.get("made_by") or [] if isinstance(m, dict) and m.get("step")]
    step = re.sub(r"[^A-Za-z0-9._-]+", "-", str(makers[-1]["step"])).strip("-.") if makers else ""
    return f"{step[:60]}-{sha[:12]}{ext}" if step else f"{sha[:12]}{ext}"


class MediaHandler(BaseHTTPRequestHandler):
    server: MediaHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive: a player's many range requests reuse one connection
    server_version = "boardflow-media"

    def do_GET(self) -> None:
        self.answer(body=True)

    def do_HEAD(self) -> None:
        self.answer(body=False)

    def refuse(self) -> None:
        self.plain(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: GET and HEAD only\n", Allow="GET, HEAD")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = refuse

    def answer(self, body: bool) -> None:
        try:
            self.serve(body)
        except BoardflowError as exc:  # the store cannot be read (S3 down, credentials): say so, keep serving
            self.plain(HTTPStatus.BAD_GATEWAY, f"{exc}\n", body=body)

    def serve(self, body: bool) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        if host not in LOOPBACK_NAMES:
            # A page elsewhere whose name was made to resolve to 127.0.0.1 (DNS rebinding) names itself here.
            return self.plain(HTTPStatus.FORBIDDEN, "ask for 127.0.0.1 or localhost\n", body=body)
        url = urlsplit(self.path)
        if url.path == "/health":
            return self.plain(HTTPStatus.OK, "ok\n", body=body)
        match = OBJECT_PATH.fullmatch(url.path)
        found = self.server.index.find(match[1]) if match else None
        if match is None or found is None:
            return self.plain(HTTPStatus.NOT_FOUND, "no such object: use /objects/<sha256>\n", body=body)
        download = parse_qs(url.query).get("download") == ["1"]
        disposition = f'{"attachment" if download else "inline"}; filename="{found.filename}"'
        path = self.server.index.store.local_path(found.key)
        if path is None:
            location = self.server.index.store.browser_url(
                found.key,
                REDIRECT_SECONDS,
                head=not body,
                content_type=found.content_type,
                content_disposition=disposition,
            )
            self.send_response(HTTPStatus.TEMPORARY_REDIRECT)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.send_header("Cache-Control", "no-store")  # the signature expires; ask again each time
            self.end_headers()
            return None
        try:
            fh = path.open("rb")
        except FileNotFoundError:  # deleted since it was found
            self.server.index.forget(match[1])
            return self.plain(HTTPStatus.NOT_FOUND, "no such object\n", body=body)
        with fh:
            self.send_file(fh, found, disposition, match[1], body)
        return None

    def send_file(self, fh, found: Found, disposition: str, sha: str, body: bool) -> None:
        size = Path(fh.name).stat().st_size
        try:
            wanted = byte_range(self.headers.get("Range"), size)
        except Unsatisfiable:
            return self.plain(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "", body=body, **{"Content-Range": f"bytes */{size}"}
            )
        start, end = wanted or (0, size - 1)
        length = end - start + 1 if size else 0
        self.send_response(HTTPStatus.PARTIAL_CONTENT if wanted else HTTPStatus.OK)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Type", found.content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Disposition", disposition)
        self.send_header("ETag", f'"{sha}"')
        self.send_header("Cache-Control", "public, max-age=31536000, immutable")  # the name is the content's hash
        # No sniffing: a file is only ever the type above, and that is never one a browser runs. (No CSP sandbox
        # here: it gives the page an opaque origin, and Chromium's own player page then may not load the file.)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if body and length:
            # sendfile copies in the kernel, from the file to the socket: memory stays flat at any size.
            self.connection.sendfile(fh, offset=start, count=length)
        return None

    def plain(self, status: HTTPStatus, text: str, body: bool = True, **headers: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002  (the stdlib's name)
        pass  # a player's range requests would flood the server's terminal

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):  # players drop range requests they no longer need
            pass


class MediaHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], index: ObjectIndex) -> None:
        self.index = index
        super().__init__(address, MediaHandler)


class MediaServer:
    """The media server in a background thread: `with MediaServer(store) as media: media.url`."""

    def __init__(self, store: ArtifactStore, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = store
        self.host = host
        self.port = port
        self._http: MediaHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MediaServer:
        try:
            self._http = MediaHTTPServer((self.host, self.port), ObjectIndex(self.store))
        except OSError as exc:
            raise ConfigurationError(
                f"The media server cannot listen on {self.host}:{self.port}: {exc.strerror or exc}.",
                hint="Pick another port with --media-port, or turn the media server off with --media-port 0.",
            ) from exc
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, name="boardflow-media", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def announce(api_url: str, media_url: str | None, timeout: float = 5.0) -> None:
    """Tell runs where the media server is: the Prefect Variable they read, set on the server at `api_url`.

    With `media_url` None the variable is removed, so runs show plain paths instead of dead links. Plain
    REST calls (POST /variables/, PATCH and DELETE /variables/name/{name}, in Prefect 3.9's
    server/api/variables.py) with one short timeout: on the way out the server may already be stopping
    (Ctrl-C reaches it too), and the client's retries would only delay the exit.
    """
    from flows.reporting.media import MEDIA_URL_VARIABLE

    api = api_url.rstrip("/")
    with httpx.Client(timeout=timeout) as client:
        if media_url is None:
            client.delete(f"{api}/variables/name/{MEDIA_URL_VARIABLE}")
            return
        made = client.post(f"{api}/variables/", json={"name": MEDIA_URL_VARIABLE, "value": media_url})
        if made.status_code == 409:  # there from an earlier start: point it here
            made = client.patch(f"{api}/variables/name/{MEDIA_URL_VARIABLE}", json={"value": media_url})
        made.raise_for_status()
