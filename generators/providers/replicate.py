"""Replicate predictions API: create (official model or version), get, cancel, `Prefer: wait`; file uploads.

Reference: https://replicate.com/docs/reference/http and
https://replicate.com/docs/topics/predictions/create-a-prediction. Auth is `Authorization: Bearer $REPLICATE_API_TOKEN`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from ..credentials import Credential
from .http import ErrorInfo, ProviderClient, ProviderInfo, parse

REPLICATE = ProviderInfo(
    name="replicate",
    credential=Credential(
        "REPLICATE_API_TOKEN", "replicate", "https://replicate.com/account/api-tokens", "replicate-credentials"
    ),
    billing_url="https://replicate.com/account/billing",
)
API_URL = "https://api.replicate.com/v1"
TERMINAL = ("succeeded", "failed", "canceled", "aborted")

Progress = Callable[[float, str], None]


class PredictionUrls(BaseModel):
    model_config = ConfigDict(extra="ignore")

    get: str
    cancel: str


class PredictionMetrics(BaseModel):
    model_config = ConfigDict(extra="ignore")

    predict_time: float | None = None  # seconds of hardware time billed (community models)
    total_time: float | None = None


class Prediction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    status: Literal["starting", "processing", "succeeded", "failed", "canceled", "aborted"]
    output: Any = None  # shape depends on the model; each generator parses it with its own schema
    error: str | None = None
    logs: str | None = None
    metrics: PredictionMetrics | None = None
    urls: PredictionUrls
    # What the list of predictions is searched by (generators.hosted.replicate finds a lost submission).
    model: str | None = None
    version: str | None = None
    input: dict[str, Any] | None = None
    created_at: dt.datetime | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


class PredictionPage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    next: str | None = None
    results: list[Prediction]


class FileUrls(BaseModel):
    model_config = ConfigDict(extra="ignore")

    get: str


class ReplicateFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    content_type: str
    size: int
    urls: FileUrls


class _ErrorBody(BaseModel):
    """Replicate errors are RFC 7807 problem details: {"title", "detail", "status"}."""

    model_config = ConfigDict(extra="ignore")

    title: str | None = None
    detail: str | None = None


class ReplicateClient(ProviderClient):
    info = REPLICATE
    default_base_url = API_URL
    base_url_env = "REPLICATE_BASE_URL"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def describe_error(self, response: httpx.Response) -> ErrorInfo:
        try:
            body = _ErrorBody.model_validate_json(response.content)
        except ValueError:
            return ErrorInfo(response.text.strip()[:500])
        parts = [p for p in (body.title, body.detail) if p]
        message = ": ".join(parts) if parts else response.text.strip()[:500]
        return ErrorInfo(message, out_of_credit="insufficient credit" in message.lower())

    async def create(
        self,
        *,
        input: dict[str, Any],
        model: str | None = None,
        version: str | None = None,
        wait_seconds: int | None = None,
    ) -> Prediction:
        """Start a prediction for an official model ("owner/name") or a model version (its 64-hex id).

        `wait_seconds` sends `Prefer: wait=N`: Replicate holds the request open up to N s (1-60) and answers
        with the output when it is ready in time. The prediction id only arrives with that answer, so a
        crash while waiting loses it; generators therefore create without waiting and journal the id first.
        """
        if (model is None) == (version is None):
            raise ValueError("give exactly one of model= or version=")
        headers = {"Prefer": f"wait={wait_seconds}"} if wait_seconds else {}
        if model is not None:
            owner, name = model.split("/", 1)
            response = await self.request(
                "POST", self.url(f"models/{owner}/{name}/predictions"), json={"input": input}, headers=headers
            )
        else:
            response = await self.request(
                "POST", self.url("predictions"), json={"version": version, "input": input}, headers=headers
            )
        return parse(Prediction, response, REPLICATE.name)

    async def get(self, prediction_id: str) -> Prediction:
        return parse(Prediction, await self.request("GET", self.url(f"predictions/{prediction_id}")), REPLICATE.name)

    async def predictions(self, since: dt.datetime) -> AsyncIterator[Prediction]:
        """The account's predictions created at or after `since`, newest first.

        GET /v1/predictions pages through every prediction of the account, 100 a page, most recent first,
        each with its model, version, input and created_at; `next` is the next page's URL
        (https://replicate.com/docs/reference/http#predictions.list, read 2026-12-03).
        """
        url: str | None = self.url("predictions")
        while url is not None:
            page = parse(PredictionPage, await self.request("GET", url), REPLICATE.name)
            for prediction in page.results:
                if prediction.created_at is not None and prediction.created_at < since:
                    return
                yield prediction
            url = page.next

    async def cancel(self, prediction_id: str) -> Prediction:
        """Cancel a prediction; Replicate stops billing its hardware time when it stops."""
        response = await self.request("POST", self.url(f"predictions/{prediction_id}/cancel"))
        return parse(Prediction, response, REPLICATE.name)

    async def wait(self, prediction: Prediction, *, timeout: float, progress: Progress | None = None) -> Prediction:
        """Poll until the prediction reaches a terminal status (succeeded, failed, canceled) and return it."""
        if prediction.done:
            return prediction

        async def check() -> Prediction | None:
            current = await self.get(prediction.id)
            if progress and not current.done:
                progress(0.05 if current.status == "starting" else 0.3, f"replicate: {current.status}")
            return current if current.done else None

        return await self.poll(check, timeout=timeout, what=f"replicate prediction {prediction.id}")

    async def upload(self, path: Path, content_type: str) -> ReplicateFile:
        """Upload a local file (multipart field `content`); its `urls.get` can be passed as a model input."""
        with path.open("rb") as fh:
            response = await self.request("POST", self.url("files"), files={"content": (path.name, fh, content_type)})
        return parse(ReplicateFile, response, REPLICATE.name)
