"""ElevenLabs text to speech and sound effects; audio answers stream into a file.

Reference: https://elevenlabs.io/docs/api-reference/text-to-speech/convert and …/text-to-sound-effects/convert.
Auth is the `xi-api-key` header. Both endpoints are synchronous (one request, one audio answer, no job to
rejoin). Answers carry `character-cost` (credits billed) and `request-id` headers.

GET /v1/history lists the account's speech (text to speech, speech to speech…; "Music and SFX generations are
not included"), newest first, up to `page_size` (at most 1000) a page, the next page after
`start_after_history_item_id` (the page's `last_history_item_id`, while `has_more`); filters include `voice_id`,
`source` and `date_after_unix` (inclusive). Each item has its history_item_id, date_unix, text, voice_id,
model_id, output_format and character_count_change_from/to; GET /v1/history/{history_item_id}/audio answers its
audio (https://elevenlabs.io/docs/api-reference/history/list, read 2026-12-03).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from ..credentials import Credential
from .http import ErrorInfo, ProviderClient, ProviderInfo, parse

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


class HistoryItem(BaseModel):
    """One generation in the account's history (the fields we match a lost request on)."""

    model_config = ConfigDict(extra="ignore")

    history_item_id: str
    date_unix: int
    character_count_change_from: int
    character_count_change_to: int
    request_id: str | None = None
    voice_id: str | None = None
    model_id: str | None = None
    text: str | None = None
    output_format: str | None = None


class _HistoryPage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    history: list[HistoryItem]
    has_more: bool
    last_history_item_id: str | None = None


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

    async def history(self, voice_id: str, since: int) -> AsyncIterator[HistoryItem]:
        """The account's text-to-speech generations with this voice made at or after `since` (Unix seconds),
        newest first, page after page."""
        params: dict[str, str | int] = {"page_size": 100, "voice_id": voice_id, "source": "TTS"}
        params["date_after_unix"] = since
        while True:
            response = await self.request("GET", self.url("v1/history"), params=params)
            page = parse(_HistoryPage, response, ELEVENLABS.name)
            for item in page.history:
                if item.date_unix < since:  # newest first: the rest are older still
                    return
                yield item
            if not page.has_more or page.last_history_item_id is None:
                return
            params["start_after_history_item_id"] = page.last_history_item_id

    async def history_audio(self, item: HistoryItem, *, dest: Path, max_bytes: int | None = None) -> AudioAnswer:
        """A history item's audio, streamed into `dest` under `max_bytes` like a fresh answer; its credits are
        the change in the account's character count the item records."""
        url = self.url(f"v1/history/{item.history_item_id}/audio")
        await self.stream_to("GET", url, dest, max_bytes=max_bytes)
        used = item.character_count_change_to - item.character_count_change_from
        return AudioAnswer(dest, used if used >= 0 else None, item.request_id)

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
