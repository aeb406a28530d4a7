"""OpenAI media endpoints: image generation and edits (base64 results), speech, transcriptions.

Reference: https://platform.openai.com/docs/api-reference/images, …/audio. Auth is `Authorization: Bearer`.
These endpoints are synchronous: one request, one answer, no job id. There is nothing to journal or rejoin,
so a retry after a dropped connection may pay twice; that is a property of the API, not of this client.
"""

from __future__ import annotations

import base64
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from ..credentials import Credential
from ..errors import UnexpectedResponseError
from .http import ErrorInfo, ProviderClient, ProviderInfo, parse

OPENAI = ProviderInfo(
    name="openai",
    credential=Credential("OPENAI_API_KEY", "openai", "https://platform.openai.com/api-keys", "openai-credentials"),
    billing_url="https://platform.openai.com/settings/organization/billing",
)
API_URL = "https://api.openai.com/v1"


class ImageData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    b64_json: str
    revised_prompt: str | None = None


class InputTokensDetails(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text_tokens: int
    image_tokens: int


class ImageUsage(BaseModel):
    """The GPT image models report the tokens they billed: text and image input, image output."""

    model_config = ConfigDict(extra="ignore")

    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: InputTokensDetails


class ImagesResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    created: int
    data: list[ImageData]
    usage: ImageUsage | None = None

    def image_bytes(self) -> list[bytes]:
        try:
            return [base64.b64decode(item.b64_json, validate=True) for item in self.data]
        except ValueError as exc:
            raise UnexpectedResponseError(
                f"b64_json is not base64 ({exc})", provider=OPENAI.name, body=self.model_dump_json()[:500]
            ) from None


class TranscriptionUsage(BaseModel):
    """What a transcription was billed on: `duration` (seconds of audio, whisper-1) or `tokens` (gpt-4o-*)."""

    model_config = ConfigDict(extra="ignore")

    type: str
    seconds: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


class Transcription(BaseModel):
    """A `json` answer: the text and its `usage`; `verbose_json` answers also carry the audio's duration."""

    model_config = ConfigDict(extra="ignore")

    text: str
    language: str | None = None
    duration: float | None = None
    usage: TranscriptionUsage | None = None

    def billed_seconds(self) -> float | None:
        """Seconds of audio billed, from `usage` (CreateTranscriptionResponseJson), else verbose_json's duration."""
        if self.usage is not None and self.usage.type == "duration" and self.usage.seconds is not None:
            return self.usage.seconds
        return self.duration


class _Error(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message: str
    type: str | None = None
    code: str | None = None


class _ErrorBody(BaseModel):
    error: _Error


class OpenAIClient(ProviderClient):
    info = OPENAI
    default_base_url = API_URL
    base_url_env = "OPENAI_BASE_URL"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def describe_error(self, response: httpx.Response) -> ErrorInfo:
        try:
            error = _ErrorBody.model_validate_json(response.content).error
        except ValueError:
            return ErrorInfo(response.text.strip()[:500])
        # An account without credit answers 429 with code insufficient_quota: not a rate limit, never retried.
        no_credit = "insufficient_quota" in (error.code, error.type) or error.code == "billing_hard_limit_reached"
        return ErrorInfo(error.message, out_of_credit=no_credit)

    async def generate_images(self, body: dict[str, Any]) -> ImagesResponse:
        return parse(ImagesResponse, await self.request("POST", self.url("images/generations"), json=body), OPENAI.name)

    async def edit_images(
        self, fields: dict[str, Any], images: list[tuple[Path, str]], mask: tuple[Path, str] | None = None
    ) -> ImagesResponse:
        """POST /images/edits as multipart: one `image` part, or `image[]` parts for several, and an optional mask."""
        name = "image" if len(images) == 1 else "image[]"
        with ExitStack() as stack:
            files = [(name, (p.name, stack.enter_context(p.open("rb")), mime)) for p, mime in images]
            if mask is not None:
                files.append(("mask", (mask[0].name, stack.enter_context(mask[0].open("rb")), mask[1])))
            data = {k: str(v) for k, v in fields.items() if v is not None}
            response = await self.request("POST", self.url("images/edits"), data=data, files=files)
        return parse(ImagesResponse, response, OPENAI.name)

    async def speech(self, body: dict[str, Any], dest: Path, *, max_bytes: int | None = None) -> httpx.Headers:
        """POST /audio/speech; the audio bytes stream into `dest`, cut off past `max_bytes`."""
        return await self.stream_to("POST", self.url("audio/speech"), dest, max_bytes=max_bytes, json=body)

    async def transcribe(self, audio: Path, mime: str, fields: dict[str, Any]) -> Transcription:
        with audio.open("rb") as fh:
            data = {k: str(v) for k, v in fields.items() if v is not None}
            response = await self.request(
                "POST", self.url("audio/transcriptions"), data=data, files={"file": (audio.name, fh, mime)}
            )
        return parse(Transcription, response, OPENAI.name)
