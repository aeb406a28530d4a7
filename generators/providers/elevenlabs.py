"""ElevenLabs text to speech and sound effects; audio answers stream into a file.

Reference: https://elevenlabs.io/docs/api-reference/text-to-speech/convert and …/text-to-sound-effects/convert.
Auth is the `xi-api-key` header. Both endpoints are synchronous (one request, one audio answer, no job to
rejoin). Answers carry `character-cost` (credits billed) and `request-id` headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from ..credentials import Credential
from .http import ErrorInfo, ProviderClient, ProviderInfo

ELEVENLABS = ProviderInfo(
    name="elevenlabs",
    credential=Credential(
        "ELEVENLABS_API_KEY", "elevenlabs", "https://elevenlabs.io/app/settings/api-keys", "elevenlabs-credentials"
    ),
    billing_url="https://elevenlabs.io/app/subscription",
)
API_URL = "https://api.elevenlabs.io"


@dataclass(frozen=True)
class AudioAnswer:
    path: Path
    credits: int | None  # the `character-cost` header: credits this request used
    request_id: str | None


class _StatusDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: str
    message: str


class _ValidationDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    loc: list[str | int] = []
    msg: str


class _ErrorBody(BaseModel):
    detail: _StatusDetail | list[_ValidationDetail] | str


class ElevenLabsClient(ProviderClient):
    info = ELEVENLABS
    default_base_url = API_URL
    base_url_env = "ELEVENLABS_BASE_URL"

    def auth_headers(self) -> dict[str, str]:
        return {"xi-api-key": self.key}

    def describe_error(self, response: httpx.Response) -> ErrorInfo:
        try:
            detail = _ErrorBody.model_validate_json(response.content).detail
        except ValueError:
            return ErrorInfo(response.text.strip()[:500])
        if isinstance(detail, _StatusDetail):
            # Running out of credits answers 401 with status quota_exceeded: a billing problem, not a bad key.
            return ErrorInfo(f"{detail.status}: {detail.message}", out_of_credit=detail.status == "quota_exceeded")
        if isinstance(detail, str):
            return ErrorInfo(detail)
        return ErrorInfo("; ".join(f"{'.'.join(str(p) for p in d.loc if p != 'body')}: {d.msg}" for d in detail))

    async def text_to_speech(
        self, voice_id: str, body: dict[str, Any], *, output_format: str, dest: Path, max_bytes: int | None = None
    ) -> AudioAnswer:
        return await self._audio(f"v1/text-to-speech/{voice_id}", body, output_format, dest, max_bytes)

    async def sound_effect(
        self, body: dict[str, Any], *, output_format: str, dest: Path, max_bytes: int | None = None
    ) -> AudioAnswer:
        return await self._audio("v1/sound-generation", body, output_format, dest, max_bytes)

    async def _audio(
        self, path: str, body: dict[str, Any], output_format: str, dest: Path, max_bytes: int | None
    ) -> AudioAnswer:
        """POST `path`; the audio streams into `dest`, cut off past `max_bytes` (default: the download cap)."""
        params = {"output_format": output_format}
        headers = await self.stream_to("POST", self.url(path), dest, max_bytes=max_bytes, json=body, params=params)
        return _answer(dest, headers)


def _answer(dest: Path, headers: httpx.Headers) -> AudioAnswer:
    # Optional headers: absent means unknown (None), never a made-up number.
    cost = headers.get("character-cost")
    return AudioAnswer(dest, int(cost) if cost and cost.isdigit() else None, headers.get("request-id"))
