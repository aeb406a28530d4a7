"""Kie (kie.ai) Suno API: create a music task, poll its record until every track is made.

Reference (read 2026-12-04): https://docs.kie.ai/cn/suno-api/generate-music (POST /api/v1/generate, the body's
fields and limits, the answer `{"code": 200, "msg": "success", "data": {"taskId": …}}`) and
https://docs.kie.ai/cn/suno-api/get-music-details (GET /api/v1/generate/record-info?taskId=…, the task
statuses, `response.sunoData[].audioUrl`). Auth is `Authorization: Bearer $KIE_API_KEY`.

Kie reports an outcome in the body's `code` as well as in the HTTP status: a body code other than 200 is
treated as that status, whatever the HTTP status was. Which HTTP status Kie itself sends with such a body is
not stated on those pages, so the client reads both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ..credentials import Credential
from .http import ErrorInfo, ProviderClient, ProviderInfo, error_for_response, parse_data

KIE = ProviderInfo(
    name="kie",
    credential=Credential("KIE_API_KEY", "kie", "https://kie.ai/api-key", "kie-credentials"),
    billing_url="https://kie.ai/billing",
)
API_URL = "https://api.kie.ai"
# Kie refuses a Suno task without callBackUrl ("Please enter callBackUrl", reported 2026-06-11 in
# https://github.com/elibarnett/kie-mcp/releases/tag/v4.0.4). boardflow polls the record instead, so unless
# KIE_CALLBACK_URL names a real receiver it sends an address under .invalid, which can never resolve (RFC 2606).
INERT_CALLBACK = "https://callback.invalid/boardflow-polls"
DONE = "SUCCESS"
FAILED = ("CREATE_TASK_FAILED", "GENERATE_AUDIO_FAILED", "CALLBACK_EXCEPTION", "SENSITIVE_WORD_ERROR")
# Kie's own codes that mean "try again later" rather than "this request is wrong": 455 is maintenance.
_TRANSIENT_CODES = {455: 503}

Progress = Callable[[float, str], None]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: int
    msg: str | None = None
    data: Any = None


class _TaskId(BaseModel):
    model_config = ConfigDict(extra="ignore")

    taskId: str  # noqa: N815  (Kie's name)


class SunoTrack(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    audioUrl: str | None = None  # noqa: N815
    duration: float | None = None


class _SunoResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sunoData: list[SunoTrack] = Field(default_factory=list)  # noqa: N815


class MusicRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    taskId: str  # noqa: N815
    status: str
    response: _SunoResponse | None = None
    errorCode: int | None = None  # noqa: N815
    errorMessage: str | None = None  # noqa: N815

    @property
    def done(self) -> bool:
        return self.status == DONE or self.status in FAILED

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    @property
    def tracks(self) -> list[SunoTrack]:
        return [t for t in (self.response.sunoData if self.response else []) if t.audioUrl]


STAGES: dict[str, float] = {"PENDING": 0.05, "TEXT_SUCCESS": 0.3, "FIRST_SUCCESS": 0.6}


class KieClient(ProviderClient):
    info = KIE
    default_base_url = API_URL
    base_url_env = "KIE_BASE_URL"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def describe_error(self, response: httpx.Response) -> ErrorInfo:
        try:
            body = _Envelope.model_validate_json(response.content)
        except ValueError:
            return ErrorInfo(response.text.strip()[:500])
        message = body.msg or response.text.strip()[:500]
        return ErrorInfo(message, out_of_credit="credit" in message.lower())

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        """One API call; the envelope's `data` when its code is 200, else the error that code stands for."""
        response = await self.request(method, self.url(path), **kw)
        envelope = parse_data(_Envelope, response.content, KIE.name, f"{method} {path}")
        if envelope.code != 200:
            status = _TRANSIENT_CODES.get(envelope.code, envelope.code)
            as_status = httpx.Response(
                status if 100 <= status <= 599 else 500,
                headers=response.headers,
                content=response.content,
                request=response.request,
            )
            raise error_for_response(as_status, KIE, self.describe_error(as_status))
        return envelope.data

    async def generate_music(self, body: dict[str, Any]) -> str:
        """Create a Suno task; returns its taskId (the one thing to journal before any waiting)."""
        callback = os.environ.get("KIE_CALLBACK_URL") or INERT_CALLBACK
        data = await self.call(
            "POST", "api/v1/generate", json={**body, "callBackUrl": body.get("callBackUrl", callback)}
        )
        return parse_data(_TaskId, data, KIE.name, "the generate answer's data").taskId

    async def music_record(self, task_id: str) -> MusicRecord:
        data = await self.call("GET", "api/v1/generate/record-info", params={"taskId": task_id})
        return parse_data(MusicRecord, data, KIE.name, f"task {task_id}")

    async def wait(self, task_id: str, *, timeout: float, progress: Progress | None = None) -> MusicRecord:
        """Poll the record until every track is made (SUCCESS) or the task failed."""

        async def check() -> MusicRecord | None:
            record = await self.music_record(task_id)
            if progress and not record.done:
                progress(STAGES.get(record.status, 0.1), f"kie: {record.status.lower()}")
            return record if record.done else None

        return await self.poll(check, timeout=timeout, what=f"kie task {task_id}")
