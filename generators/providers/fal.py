"""fal.ai queue API: submit to queue.fal.run, poll the status URL, fetch the result, cancel; upload inputs.

Reference: https://docs.fal.ai/documentation/model-apis/inference/queue and
https://docs.fal.ai/documentation/model-apis/fal-cdn. Auth is `Authorization: Key $FAL_KEY`.

Uploads follow the official clients (github.com/fal-ai/fal, fal_client/client.py, read 2026-12-03): a CDN
token from rest.fal.ai (`POST /storage/auth/token?storage_type=fal-cdn-v3`), then one POST of the bytes to
`<base_url>/files/upload`, or, for a large file, a multipart upload (create, PUT each part, complete). The
API key goes to rest.fal.ai only; the CDN sees the short-lived token.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from ..credentials import Credential
from ..errors import ProviderInputError, UnexpectedResponseError
from .http import ErrorInfo, ProviderClient, ProviderInfo, file_chunks, parse

FAL = ProviderInfo(
    name="fal",
    credential=Credential("FAL_KEY", "fal", "https://fal.ai/dashboard/keys", "fal-credentials"),
    billing_url="https://fal.ai/dashboard/billing",
)
QUEUE_URL = "https://queue.fal.run"
REST_URL = "https://rest.fal.ai"  # both official clients moved here from rest.alpha.fal.ai
# Above this a file goes up in parts. fal's Python client switches at 100 MiB (fal_client/client.py,
# MULTIPART_THRESHOLD); integrations of its JS client use 90 MiB (not read in fal-js itself). The smaller keeps
# every single request clear of the ~100 MB body limit in front of the CDN.
MULTIPART_THRESHOLD = 90 * 1024 * 1024
PART_SIZE = 10 * 1024 * 1024  # the Python client's part size

Progress = Callable[[float, str], None]


class FalJob(BaseModel):
    """A submitted request. Its URLs come from fal: for endpoints with a sub-path (fal-ai/flux/dev) they name
    only the app (fal-ai/flux), so they are kept as given rather than rebuilt."""

    model_config = ConfigDict(extra="ignore")

    request_id: str
    status_url: str
    response_url: str
    cancel_url: str


class FalStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    queue_position: int | None = None  # only while IN_QUEUE
    error: str | None = None  # set when a COMPLETED request failed
    error_type: str | None = None


class FalCancel(BaseModel):
    status: Literal["CANCELLATION_REQUESTED", "ALREADY_COMPLETED", "OK", "NOT_FOUND"]


class FalCdnToken(BaseModel):
    model_config = ConfigDict(extra="ignore")

    token: str
    token_type: str
    base_url: str


class FalUploaded(BaseModel):
    model_config = ConfigDict(extra="ignore")

    access_url: str


class FalMultipart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    access_url: str
    uploadId: str  # noqa: N815  (fal's field name)


class _Detail(BaseModel):
    loc: list[str | int] = []
    msg: str


class _ErrorBody(BaseModel):
    detail: str | list[_Detail]


class FalClient(ProviderClient):
    info = FAL
    default_base_url = QUEUE_URL
    base_url_env = "FAL_BASE_URL"

    def __init__(
        self,
        *args: Any,
        rest_url: str | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self.rest_url = (rest_url or os.environ.get("FAL_REST_URL") or REST_URL).rstrip("/")
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self._cdn: FalCdnToken | None = None

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.key}"}

    def describe_error(self, response: httpx.Response) -> ErrorInfo:
        try:
            body = _ErrorBody.model_validate_json(response.content)
        except ValueError:
            return ErrorInfo(response.text.strip()[:500])
        if isinstance(body.detail, str):
            # An account out of money answers 403 "User is locked. Reason: Exhausted balance…".
            lowered = body.detail.lower()
            return ErrorInfo(body.detail, out_of_credit="exhausted balance" in lowered or "top_up" in lowered)
        return ErrorInfo("; ".join(f"{'.'.join(str(p) for p in d.loc if p != 'body')}: {d.msg}" for d in body.detail))

    def check_own_url(self, url: str) -> str:
        # The key goes to the queue host and to fal's REST host (storage uploads), nowhere else.
        if url.startswith(self.rest_url + "/"):
            return url
        return super().check_own_url(url)

    async def submit(self, endpoint: str, arguments: dict[str, Any]) -> FalJob:
        """Queue a request for `endpoint` (e.g. fal-ai/flux/dev); fal bills it once it completes."""
        response = await self.request("POST", self.url(endpoint), json=arguments)
        return parse(FalJob, response, FAL.name)

    async def status(self, job: FalJob) -> FalStatus:
        return parse(FalStatus, await self.request("GET", job.status_url), FAL.name)

    async def result(self, job: FalJob) -> dict[str, Any]:
        """The completed request's output, as JSON; each generator parses it with the model's own schema."""
        response = await self.request("GET", job.response_url)
        return parse(_AnyObject, response, FAL.name).model_dump()

    async def cancel(self, job: FalJob) -> str:
        """Ask fal to cancel: removed if still queued, signalled if running. Returns fal's answer."""
        try:
            response = await self.request("PUT", job.cancel_url)
        except ProviderInputError as exc:  # fal answers 400 {"status": "ALREADY_COMPLETED"} for a finished one
            if exc.status_code == 400 and exc.body and "ALREADY_COMPLETED" in exc.body:
                return "ALREADY_COMPLETED"
            raise
        return parse(FalCancel, response, FAL.name).status

    async def wait(self, job: FalJob, *, timeout: float, progress: Progress | None = None) -> FalStatus:
        """Poll until the request is COMPLETED (successfully or not) and return its last status."""

        async def check() -> FalStatus | None:
            status = await self.status(job)
            if progress and status.status == "IN_QUEUE":
                progress(0.05, f"fal: queued (position {status.queue_position})")
            elif progress and status.status == "IN_PROGRESS":
                progress(0.3, "fal: running")
            return status if status.status == "COMPLETED" else None

        return await self.poll(check, timeout=timeout, what=f"fal request {job.request_id}")

    async def upload(self, path: Path, content_type: str) -> str:
        """Put a local file on fal's CDN and return its public URL (multipart above the threshold)."""
        cdn = await self._cdn_token()
        size = path.stat().st_size
        headers = {"Authorization": f"{cdn.token_type} {cdn.token}", "Content-Type": content_type}
        headers["X-Fal-File-Name"] = path.name
        if size <= self.multipart_threshold:
            answer = await self.request(
                "POST",
                f"{cdn.base_url}/files/upload",
                auth=False,  # the CDN token, not the key
                content=file_chunks(path),
                headers={**headers, "Content-Length": str(size)},
            )
            return parse(FalUploaded, answer, FAL.name).access_url
        created = await self.request("POST", f"{cdn.base_url}/files/upload/multipart", auth=False, headers=headers)
        upload = parse(FalMultipart, created, FAL.name)
        parts = []
        for number, chunk in enumerate(_parts(path, self.part_size), start=1):
            answer = await self.request(
                "PUT",
                f"{upload.access_url}/multipart/{upload.uploadId}/{number}",
                auth=False,
                content=await chunk,
                headers={"Authorization": headers["Authorization"], "Content-Type": content_type},
            )
            if "etag" not in answer.headers:
                raise UnexpectedResponseError(
                    f"part {number} of {path.name} was answered without an ETag", provider=FAL.name, body=""
                )
            parts.append({"partNumber": number, "etag": answer.headers["etag"]})
        await self.request(
            "POST",
            f"{upload.access_url}/multipart/{upload.uploadId}/complete",
            auth=False,
            json={"parts": parts},
            headers={"Authorization": headers["Authorization"]},
        )
        return upload.access_url

    async def _cdn_token(self) -> FalCdnToken:
        if self._cdn is None:  # short-lived, but a client lives for one step: one token is enough
            answer = await self.request(
                "POST", f"{self.rest_url}/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={}
            )
            self._cdn = parse(FalCdnToken, answer, FAL.name)
        return self._cdn


def _parts(path: Path, size: int):
    """Awaitables of the file's consecutive `size`-byte parts (read one at a time, off the event loop)."""
    total = path.stat().st_size
    for offset in range(0, total, size):
        yield asyncio.to_thread(_read_at, path, offset, size)


def _read_at(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read(size)


class _AnyObject(BaseModel):
    """A JSON object of any fields (a model's output): checked to be an object, kept whole."""

    model_config = ConfigDict(extra="allow")
