"""What every provider client shares: auth'd requests, HTTP-error mapping, Retry-After, parsing, polling, downloads."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlparse

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from ..credentials import Credential, get_secret, redact, remember_secret
from ..errors import (
    InsufficientCreditError,
    ProviderAuthError,
    ProviderError,
    ProviderInputError,
    RateLimitError,
    TransientProviderError,
    UnexpectedResponseError,
    shorten,
)
from ..net.bodies import DECODABLE, IDENTITY, decoded_chunks, save_body
from ..settings import get_settings

if TYPE_CHECKING:
    from ..artifacts import Artifact
    from ..context import GeneratorContext

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

# Connect fails fast; reads allow for slow synchronous endpoints (speech, image edits) that answer in one go.
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
_INPUT_STATUSES = {400, 404, 409, 413, 415, 422}
_MAX_POLL_FAILURES = 6
_MAX_ERROR_BODY = 1 << 20  # an error answer is a message, not a file
# Read here, so a rebuilt response must not announce them: its content is the decoded body.
_BODY_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    credential: Credential
    billing_url: str


@dataclass(frozen=True)
class ErrorInfo:
    """What a provider's error body says, in its own shape: the message and whether it means 'out of credit'."""

    message: str
    out_of_credit: bool = False


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date; None when absent."""
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    if "retry-after" not in headers:
        return None
    value = headers["retry-after"].strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_response(response: httpx.Response, info: ProviderInfo, described: ErrorInfo) -> ProviderError:
    """The error class a failed response stands for, with the provider's message and no key in sight."""
    status = response.status_code
    cred = info.credential
    kw: dict[str, Any] = {"provider": info.name, "status_code": status, "body": redact(response.text[:4000])}
    message = redact(described.message) or f"HTTP {status} with an empty body"
    if described.out_of_credit or status == 402:
        return InsufficientCreditError(message, hint=f"Add credit at {info.billing_url}, then run again.", **kw)
    if status in (401, 403):
        where = f" (or the {cred.block_type} block named by {cred.env_var}_BLOCK)" if cred.block_type else ""
        return ProviderAuthError(
            message,
            hint=f"Check the key in {cred.env_var}{where}; get one at {cred.signup_url}. Retrying will not help.",
            **kw,
        )
    if status == 429:
        return RateLimitError(message, retry_after=retry_after_seconds(response.headers), **kw)
    if status in _INPUT_STATUSES:
        return ProviderInputError(message, **kw)
    if status >= 500 or status == 408:
        return TransientProviderError(message, **kw)
    return ProviderError(message, **kw)


def parse(model: type[M], response: httpx.Response, provider: str) -> M:
    """The body as `model`; a body that does not match raises UnexpectedResponseError carrying it."""
    return parse_data(model, response.content, provider, f"{response.request.method} {response.request.url.path}")


def parse_data(model: type[M], data: Any, provider: str, what: str) -> M:
    try:
        if isinstance(data, bytes):  # a raw body; anything else is JSON already decoded (e.g. an output field)
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        body = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
        raise UnexpectedResponseError(
            f"{what} answered with a body that is not a {model.__name__} ({where}: {first['msg']})",
            provider=provider,
            body=redact(body),
        ) from None


class ProviderClient:
    """Base of the four clients: one httpx.AsyncClient (injectable), the key, an overridable base URL.

    Use as `async with FalClient() as fal:`; an injected client is left open for its owner to close.
    """

    info: ClassVar[ProviderInfo]
    default_base_url: ClassVar[str]
    base_url_env: ClassVar[str]

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        base_url: str | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
    ) -> None:
        if isinstance(api_key, SecretStr):
            api_key = api_key.get_secret_value()
        # A key passed in is remembered like one from the environment, so redact() masks it too.
        self._key = remember_secret(api_key) if api_key else get_secret(self.info.credential)
        self.base_url = (base_url or os.environ.get(self.base_url_env) or self.default_base_url).rstrip("/")
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._owns_http = http is None
        self.poll_interval = poll_interval
        self.max_poll_interval = max(max_poll_interval, poll_interval)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying client (API calls only: outputs are downloaded through the fetch policy's own client)."""
        return self._http

    @property
    def key(self) -> str:
        return self._key.get_secret_value()

    def auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def describe_error(self, response: httpx.Response) -> ErrorInfo:
        raise NotImplementedError

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def check_own_url(self, url: str) -> str:
        """Refuse to send the key to a host other than the base URL's (a job's URLs come from a response)."""
        ours, theirs = urlparse(self.base_url), urlparse(url)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            raise UnexpectedResponseError(
                f"refusing to send the API key to {theirs.scheme}://{theirs.netloc}, "
                f"which is not {ours.scheme}://{ours.netloc}",
                provider=self.info.name,
                body=url,
            )
        return url

    async def request(self, method: str, url: str, *, auth: bool = True, **kw: Any) -> httpx.Response:
        """Send one request; transport faults and non-2xx answers become boardflow errors.

        The body is read through the bounded decoder, under the download cap (an error body under 1 MiB),
        so a compressed bomb in an answer is refused before it is inflated.
        """
        if auth:
            kw["headers"] = {**self.auth_headers(), **kw.get("headers", {})}
            self.check_own_url(url)
        kw["headers"] = {**kw.get("headers", {}), **DECODABLE}
        try:
            async with self._http.stream(method, url, **kw) as streamed:
                response = await self._read(streamed, method, url, get_settings().max_download_bytes)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._transport_error(method, url, exc) from None
        if not response.is_success:
            raise error_for_response(response, self.info, self.describe_error(response))
        return response

    async def stream_to(
        self, method: str, url: str, dest: Path, *, max_bytes: int | None = None, **kw: Any
    ) -> httpx.Headers:
        """Send one request and stream a binary answer (audio) into `dest`; returns the response headers.

        The answer is cut off past `max_bytes` (default: the download cap, BOARDFLOW_MAX_DOWNLOAD_MB) and
        `dest` only appears once the whole answer is in, so a refused or broken answer leaves no file.
        """
        limit = max_bytes if max_bytes is not None else get_settings().max_download_bytes
        kw["headers"] = {**self.auth_headers(), **kw.get("headers", {}), **IDENTITY}
        self.check_own_url(url)
        try:
            async with self._http.stream(method, url, **kw) as response:
                if not response.is_success:
                    failed = await self._read(response, method, url, limit)
                    raise error_for_response(failed, self.info, self.describe_error(failed))
                too_big = functools.partial(self._too_big, method, url, limit, "audio this long")
                await save_body(response, url, dest, limit, too_big)
                return response.headers
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._transport_error(method, url, exc) from None

    async def _read(self, streamed: httpx.Response, method: str, url: str, limit: int) -> httpx.Response:
        """`streamed` with its body read in bounded steps, as a response whose content is already decoded."""
        if not streamed.is_success:
            limit = min(limit, _MAX_ERROR_BODY)
        body = bytearray()
        too_big = functools.partial(self._too_big, method, url, limit, "an answer this large")
        async for chunk in decoded_chunks(streamed, url, limit, too_big):
            body += chunk
        headers = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _BODY_HEADERS]
        return httpx.Response(streamed.status_code, headers=headers, content=bytes(body), request=streamed.request)

    def _too_big(self, method: str, url: str, limit: int, what: str) -> ProviderError:
        return ProviderError(
            f"the answer of {method} {urlparse(url).path} is larger than the cap of {limit / 2**20:.0f} MiB; "
            "nothing was kept",
            provider=self.info.name,
            hint=f"Raise BOARDFLOW_MAX_DOWNLOAD_MB if {what} is expected, or ask for less.",
        )

    def _transport_error(self, method: str, url: str, exc: httpx.HTTPError | httpx.InvalidURL) -> ProviderError:
        detail = redact(str(exc)) or type(exc).__name__
        if isinstance(exc, httpx.InvalidURL):
            return ProviderError(
                f"{method} {shorten(redact(url))} is not a valid URL ({detail})",
                provider=self.info.name,
                hint=f"Check {self.base_url_env} if it is set; otherwise the provider's answer named a broken URL.",
            )
        if isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "lost its connection"
            return TransientProviderError(f"{method} {urlparse(url).path} {kind} ({detail})", provider=self.info.name)
        return ProviderError(
            f"{method} {urlparse(url).path} failed: {detail} ({type(exc).__name__})",
            provider=self.info.name,
            hint=f"Check {self.base_url_env} if it is set; the server there does not speak HTTP as the API does.",
        )

    async def poll(self, check: Callable[[], Awaitable[T | None]], *, timeout: float, what: str) -> T:
        """Call `check` until it returns a value, backing off between calls and riding out transient faults."""
        deadline = time.monotonic() + timeout
        interval, failures = self.poll_interval, 0
        while True:
            try:
                result = await check()
                failures = 0
            except (RateLimitError, TransientProviderError) as exc:
                # A status GET is idempotent: retrying it here is safe and keeps one blip from failing a long job.
                failures += 1
                if failures > _MAX_POLL_FAILURES or time.monotonic() >= deadline:
                    raise
                backoff = min(self.poll_interval * 2**failures, 30.0)
                wait = exc.retry_after if isinstance(exc, RateLimitError) and exc.retry_after else backoff
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
                continue
            if result is not None:
                return result
            if time.monotonic() >= deadline:
                raise TransientProviderError(
                    f"{what} is still running after {timeout:.0f} s",
                    provider=self.info.name,
                    hint="Its job id is journaled: run the step again to rejoin the job instead of paying twice.",
                )
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, self.max_poll_interval)


async def store_output(context: GeneratorContext, kind: str, url: str) -> Artifact:
    """Download a provider's output URL into the store (streamed, checked by the fetch policy, probed).

    The download has its own client, whose connections go only to addresses that passed the check, so a
    CDN name that rebinds cannot reach an internal service. A dropped or timed-out download is a
    TransientProviderError: the job stays journaled and a retry collects it.
    """
    return await context.store_artifact(kind, url)


async def file_chunks(path: Path, size: int = 1 << 20) -> AsyncIterator[bytes]:
    """A file's bytes in chunks, for request bodies that should not be loaded whole (uploads)."""
    with path.open("rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, size):
            yield chunk


def mime_type(fmt: str, kind: str) -> str:
    """The MIME type providers expect for an artifact's format."""
    special = {
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "mp3": "audio/mpeg",
        "m4a": "audio/mp4",
        "mkv": "video/x-matroska",
        "mov": "video/quicktime",
        "txt": "text/plain",
    }
    return special.get(fmt, f"{kind}/{fmt}")
