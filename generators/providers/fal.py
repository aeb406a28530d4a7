"""fal.ai queue API: submit to queue.fal.run, poll the status URL, fetch the result, cancel; upload inputs.

Reference: https://docs.fal.ai/documentation/model-apis/inference/queue and
https://docs.fal.ai/documentation/model-apis/fal-cdn. Auth is `Authorization: Key $FAL_KEY`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from ..credentials import Credential
from ..errors import ProviderInputError
from .http import ErrorInfo, ProviderClient, ProviderInfo, file_chunks, parse

FAL = ProviderInfo(
    name="fal",
    credential=Credential("FAL_KEY", "fal", "https://fal.ai/dashboard/keys", "fal-credentials"),
    billing_url="https://fal.ai/dashboard/billing",
)
QUEUE_URL = "https://queue.fal.run"
REST_URL = "https://rest.alpha.fal.ai"

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


class FalUpload(BaseModel):
    upload_url: str
    file_url: str


class _Detail(BaseModel):
    loc: list[str | int] = []
    msg: str


class _ErrorBody(BaseModel):
    detail: str | list[_Detail]


class FalClient(ProviderClient):
    info = FAL
    default_base_url = QUEUE_URL
    base_url_env = "FAL_BASE_URL"

    def __init__(self, *args: Any, rest_url: str | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.rest_url = (rest_url or os.environ.get("FAL_REST_URL") or REST_URL).rstrip("/")

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
        """Put a local file on fal's CDN (initiate, then PUT to the signed URL) and return its public URL."""
        initiate = await self.request(
            "POST",
            f"{self.rest_url}/storage/upload/initiate",
            params={"storage_type": "fal-cdn-v3"},
            json={"content_type": content_type, "file_name": path.name},
        )
        target = parse(FalUpload, initiate, FAL.name)
        # The signed upload URL carries its own authorization: the key is not sent there.
        await self.request(
            "PUT",
            target.upload_url,
            auth=False,
            content=file_chunks(path),
            headers={"Content-Type": content_type, "Content-Length": str(path.stat().st_size)},
        )
        return target.file_url


class _AnyObject(BaseModel):
    """A JSON object of any fields (a model's output): checked to be an object, kept whole."""

    model_config = ConfigDict(extra="allow")
