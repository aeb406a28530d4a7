"""The fake provider server: a real HTTP server on 127.0.0.1 speaking fal, Replicate, OpenAI, ElevenLabs and Kie.

Each provider lives under a path prefix (`/fal/queue`, `/replicate/v1`, `/openai/v1`, `/elevenlabs`, `/kie`),
so a client pointed at `{url}/fal/queue` sees the same paths, methods, auth headers, status flows and JSON bodies as the
real API. Outputs are real media served from `/files/…`. Every billed submission is recorded; knobs inject
latency, queue time, 429s with Retry-After, 5xx, dropped connections after a submission, failed jobs, slow
downloads and exhausted credit.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import random
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

from . import elevenlabs_routes, fal_routes, kie_routes, openai_routes, replicate_routes
from .media import CONTENT_TYPES

KEYS = {
    "fal": "fal-test-key-3f9a61c2",
    "replicate": "r8_test_token_7d1e55b0",
    "openai": "sk-test-openai-9c2b4e77",
    "elevenlabs": "el-test-key-1a2b3c4d",
    "kie": "kie-test-key-5e6f7a8b",
}
ROUTES = {
    "/fal/": fal_routes,
    "/replicate/": replicate_routes,
    "/openai/": openai_routes,
    "/elevenlabs/": elevenlabs_routes,
    "/kie/": kie_routes,
}


@dataclass
class Knobs:
    latency: float = 0.0  # seconds added to every API request
    queue_seconds: float = 0.0  # a job waits this long in the queue…
    job_seconds: float = 0.05  # …then runs this long
    rate_429: float = 0.0  # chance an API request is refused with 429 (before any work: never billed)
    retry_after: float = 1.0  # the Retry-After sent with those 429s
    rate_5xx: float = 0.0  # chance an API request fails with 503 (before any work: never billed)
    faults_on: str = "all"  # "all" API requests, or only "submissions" (status polls and results stay clean)
    drop_after_submit: int = 0  # the next N submissions are billed, then the connection is cut unanswered
    fail_jobs: bool = False  # accepted jobs end in failure
    fal_max_body: int = 100 * 1024 * 1024  # fal's CDN refuses a larger single request (413)
    reject_input: bool = False  # fal: the runner takes the job, then rejects its input (422 on the result; billed)
    slow_download: float = 0.0  # seconds to stream each output file
    exhausted_credit: bool = False  # every API request gets the provider's out-of-credit answer
    elevenlabs_history: bool = True  # False: speech is billed but kept out of the history (zero retention)
    audio_bytes: int = 0  # when set, audio answers stream this many bytes (chunked, no length) after the real clip
    video_size: tuple[int, int] = (320, 180)  # fake videos stay small so tests stay fast
    seed: int = 1234
    keys: dict[str, str] = field(default_factory=lambda: dict(KEYS))


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> tuple[dict[str, str], list[tuple[str, str, bytes, str]]]:
        """Multipart fields and files: ({name: value}, [(name, filename, bytes, content type)])."""
        raw = b"Content-Type: " + self.headers["content-type"].encode() + b"\r\n\r\n" + self.body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        fields, files = {}, []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename() is not None:
                files.append((name, part.get_filename(), payload, part.get_content_type()))
            else:
                fields[name] = payload.decode()
        return fields, files


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without any answer
    slow_seconds: float = 0.0  # spread the body over this many seconds
    pad_to: int = 0  # stream the body chunked, padded with zeros to this many bytes (an audio answer that never ends)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(data).encode(), "application/json", headers or {})


@dataclass(frozen=True)
class Submission:
    provider: str
    model: str
    job_id: str
    input: Any
    at: float


@dataclass
class Job:
    provider: str
    id: str
    model: str
    input: Any
    submitted: float
    starts: float
    finishes: float
    canceled: bool = False
    error: str | None = None
    output: Any = None  # made once, when first seen finished

    def state(self, now: float) -> str:
        if self.canceled:
            return "canceled"
        if now < self.starts:
            return "queued"
        if now < self.finishes:
            return "running"
        return "failed" if self.error else "done"


# The generation (see FakeProviderServer.reset) the request a handler thread serves arrived in.
_request = threading.local()


class FakeProviderServer:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.knobs = Knobs()
        self._httpd: ThreadingHTTPServer | None = None
        self.generation = 0
        self.in_flight = 0  # requests being handled right now
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeProviderServer:
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="fake-providers", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self, **knobs: Any) -> None:
        """Fresh knobs (with overrides), no jobs, no records: each test starts clean.

        A request that arrived before the reset (a slow answer an earlier test gave up on) may still be handled
        after it; it belongs to the earlier test, so it bills and logs nothing here (see `stale`).
        """
        with self._lock:
            self.generation += 1
            self.knobs = replace(Knobs(), **knobs)
            self.rng = random.Random(self.knobs.seed)
            self.jobs: dict[str, Job] = {}
            self.files: dict[str, tuple[bytes, str]] = {}
            self.multipart: dict[str, tuple[str, str, dict[int, bytes]]] = {}  # fal uploads in parts
            self.cdn_requests: list[tuple[str, str, int]] = []  # (method, path, body bytes) at fal's CDN
            self._submissions: list[Submission] = []
            self.request_log: list[tuple[str, str, int]] = []
            self.streamed = 0  # bytes of the last padded answer that went out
            self.history: list[dict] = []  # ElevenLabs' history of speech, oldest first, each with its "audio"
            self.stream_cut = threading.Event()  # set when a client hung up on a padded answer
            self._forced: dict[str, deque[tuple[int, float | None]]] = {}

    def set(self, **knobs: Any) -> None:
        with self._lock:
            self.knobs = replace(self.knobs, **knobs)

    # -- what tests look at ----------------------------------------------------------------------
    def submissions(self, provider: str | None = None, model: str | None = None) -> list[Submission]:
        with self._lock:
            return [
                s
                for s in self._submissions
                if (provider is None or s.provider == provider) and (model is None or s.model == model)
            ]

    def requests_to(self, path_part: str, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for m, p, _ in self.request_log if path_part in p and (method is None or m == method))

    def fail_next(self, provider: str, status: int, times: int = 1, retry_after: float | None = None) -> None:
        """The next `times` API requests to `provider` get its own error answer for `status` (0 = drop)."""
        with self._lock:
            self._forced.setdefault(provider, deque()).extend([(status, retry_after)] * times)

    def finish_all(self) -> None:
        """Every unfinished job finishes now (for tests that waited on a deliberately slow job)."""
        now = time.time()
        with self._lock:
            for job in self.jobs.values():
                job.starts, job.finishes = min(job.starts, now), min(job.finishes, now)

    # -- used by the provider routes -------------------------------------------------------------
    def new_job(self, provider: str, model: str, payload: Any) -> Job:
        now = time.time()
        with self._lock:
            k = self.knobs
            job = Job(
                provider,
                uuid.uuid4().hex[:20],
                model,
                payload,
                now,
                now + k.queue_seconds,
                now + k.queue_seconds + k.job_seconds,
                error="the model crashed (fake)" if k.fail_jobs else None,
            )
            self.jobs[job.id] = job
        self.bill(provider, model, job.id, payload)
        return job

    def stale(self) -> bool:
        """True in a handler thread whose request arrived before the last reset (another test's request)."""
        return getattr(_request, "generation", self.generation) != self.generation

    def bill(self, provider: str, model: str, job_id: str, payload: Any) -> None:
        if self.stale():
            return
        with self._lock:
            self._submissions.append(Submission(provider, model, job_id, payload, time.time()))

    def add_file(self, data: bytes, ext: str) -> str:
        name = f"{uuid.uuid4().hex}.{ext}"
        with self._lock:
            self.files[name] = (data, CONTENT_TYPES.get(ext, "application/octet-stream"))
        return f"{self.url}/files/{name}"

    def file_bytes(self, url: str) -> bytes | None:
        """The bytes behind a URL this server handed out (outputs, uploads) or a data: URI."""
        if url.startswith("data:"):
            import base64

            return base64.b64decode(url.split(",", 1)[1])
        name = urlparse(url).path.rsplit("/", 1)[-1]
        with self._lock:
            for key, (data, _) in self.files.items():
                if key == name or key.split(".")[0] == name:
                    return data
        return None

    def gate(
        self, provider: str, presented: str | None, error: Callable[..., Response], *, submission: bool = True
    ) -> Response | None:
        """Auth, exhausted credit, forced errors and random 429/5xx, in the provider's own error shapes.

        `error(status, presented_key)` builds the provider's answer for a status (402 = its out-of-credit one).
        """
        if presented != self.knobs.keys[provider]:
            return error(401, presented or "")
        if self.knobs.exhausted_credit:
            return error(402)
        with self._lock:
            forced = self._forced.get(provider)
            status, retry_after = forced.popleft() if forced else (None, None)
            roll = self.rng.random()
        if status == 0:
            return Response(drop=True)
        if status is None and not submission and self.knobs.faults_on == "submissions":
            return None
        if status is None and roll < self.knobs.rate_429:
            status = 429
        elif status is None and roll < self.knobs.rate_429 + self.knobs.rate_5xx:
            status = 503
        if status is None:
            return None
        answer = error(status)
        if status == 429:
            answer.headers["Retry-After"] = _fmt(retry_after if retry_after is not None else self.knobs.retry_after)
        return answer

    def take_drop(self) -> bool:
        """True when this accepted submission should be billed and then its connection cut."""
        with self._lock:
            if self.knobs.drop_after_submit > 0:
                self.knobs = replace(self.knobs, drop_after_submit=self.knobs.drop_after_submit - 1)
                return True
        return False

    def handle(self, req: Request) -> Response:
        if req.path.startswith("/files/") and "/multipart/" in req.path:
            return fal_routes.handle(self, req)
        if req.path.startswith("/files/"):
            entry = self.files.get(req.path.removeprefix("/files/"))
            if entry is None:
                return json_response({"detail": "Not Found"}, 404)
            return Response(200, entry[0], entry[1], slow_seconds=self.knobs.slow_download)
        for prefix, routes in ROUTES.items():
            if req.path.startswith(prefix):
                if self.knobs.latency:
                    time.sleep(self.knobs.latency)
                return routes.handle(self, req)
        return json_response({"detail": f"no fake route for {req.path}"}, 404)


def _fmt(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}"


class _Server(ThreadingHTTPServer):
    # The default listen backlog of 5 drops SYNs when a batch opens many connections at once, and the
    # client's retransmit costs a whole second: real APIs do not behave like that.
    request_queue_size = 256

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # a client hung up (timeout tests): not a fake bug
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real APIs
    # Headers and body go out as two writes; with Nagle on, the body waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    fake: FakeProviderServer

    def log_message(self, *args: Any) -> None:  # quiet: tests read the request log instead
        pass

    def _serve(self) -> None:
        _request.generation = self.fake.generation
        with self.fake._lock:
            self.fake.in_flight += 1
        try:
            self._serve_one()
        finally:
            with self.fake._lock:
                self.fake.in_flight -= 1

    def _serve_one(self) -> None:
        parsed = urlparse(self.path)
        length = int(self.headers["Content-Length"] or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            self.command,
            parsed.path,
            dict(parse_qsl(parsed.query)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        try:
            resp = self.fake.handle(req)
        except Exception as exc:  # a bug in the fake shows up as a 500 naming it, not as a hang
            resp = json_response({"detail": f"fake server error: {type(exc).__name__}: {exc}"}, 500)
        with self.fake._lock:
            if not self.fake.stale():
                self.fake.request_log.append((req.method, req.path, 0 if resp.drop else resp.status))
        if resp.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if resp.pad_to:
            self._stream_padded(resp)
            return
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if resp.slow_seconds and resp.body:
            chunks = [resp.body[i : i + 16384] for i in range(0, len(resp.body), 16384)]
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(resp.slow_seconds / len(chunks))
        else:
            self.wfile.write(resp.body)

    def _stream_padded(self, resp: Response) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        self.fake.streamed, block = 0, bytes(65536)
        try:
            for chunk in (resp.body, *[block] * ((resp.pad_to - len(resp.body)) // len(block))):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.fake.streamed += len(chunk)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.fake.stream_cut.set()

    def _serve_quietly(self) -> None:
        try:
            self._serve()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test): nothing to do
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _serve_quietly
