"""ElevenLabs text-to-speech and sound-generation endpoints as the fake server speaks them."""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING, Any

from . import media

if TYPE_CHECKING:
    from .server import FakeProviderServer, Request, Response

HALF_CREDIT_MODELS = {"eleven_flash_v2_5", "eleven_flash_v2", "eleven_turbo_v2_5", "eleven_turbo_v2"}


def presented_key(req: Request) -> str | None:
    return req.headers.get("xi-api-key")


def _detail(status: int, code: str, message: str) -> Response:
    from .server import json_response

    return json_response({"detail": {"status": code, "message": message}}, status)


def error(status: int, presented: str = "") -> Response:
    from .server import json_response

    if status == 401:
        return _detail(401, "invalid_api_key", f"Invalid API key: {presented}")
    if status == 402:  # ElevenLabs answers an account out of credits with 401 quota_exceeded
        return _detail(
            401,
            "quota_exceeded",
            "This request exceeds your quota of 10000. You have 0 credits "
            "remaining, while 91 credits are required for this request.",
        )
    if status in (400, 422):
        return json_response({"detail": [{"loc": ["body", "text"], "msg": "Field required", "type": "missing"}]}, 422)
    if status == 429:
        return _detail(429, "too_many_concurrent_requests", "Too many concurrent requests for your plan.")
    return _detail(status, "internal_error", "An internal error occurred.")


def _format(output_format: str) -> tuple[str, int] | None:
    """mp3_44100_128 -> ("mp3", 44100); the fake serves the containers our probe can read."""
    codec, _, rest = output_format.partition("_")
    rate = rest.partition("_")[0]
    if codec not in ("mp3", "opus") or not rate.isdigit():
        return None
    return codec, int(rate)


def handle(fake: FakeProviderServer, req: Request) -> Response:
    from .server import Response, json_response

    if blocked := fake.gate("elevenlabs", presented_key(req), error):
        return blocked
    if req.method != "POST":
        return json_response({"detail": "Method Not Allowed"}, 405)
    body: dict[str, Any] = req.json()
    fmt = _format(req.query.get("output_format", "mp3_44100_128"))
    if fmt is None:
        return _detail(400, "invalid_output_format", f"Unsupported output_format {req.query['output_format']!r}.")
    text = str(body.get("text", ""))
    if not text.strip():
        return error(422)
    path = req.path.removeprefix("/elevenlabs")
    if path.startswith("/v1/text-to-speech/"):
        model = body.get("model_id", "eleven_multilingual_v2")
        credits = math.ceil(len(text) * (0.5 if model in HALF_CREDIT_MODELS else 1))
        seconds = max(1.0, round(len(text) / 15, 2))
    elif path == "/v1/sound-generation":
        duration = body.get("duration_seconds")
        if duration is not None and not 0.5 <= float(duration) <= 30:
            return json_response(
                {
                    "detail": [
                        {
                            "loc": ["body", "duration_seconds"],
                            "type": "less_than_equal",
                            "msg": "Input should be between 0.5 and 30",
                        }
                    ]
                },
                422,
            )
        # API reference: 100 credits with an automatic duration, 25 per second of a set one.
        credits = 100 if duration is None else math.ceil(25 * float(duration))
        model, seconds = body.get("model_id", "eleven_text_to_sound_v2"), float(duration or 5.0)
    else:
        return json_response({"detail": "Not Found"}, 404)
    request_id = uuid.uuid4().hex
    fake.bill("elevenlabs", model, request_id, body)
    if fake.take_drop():
        return Response(drop=True)
    data = media.audio(seconds, fmt[0], fmt[1], 1, media.variant_of(text))
    return Response(
        200,
        data,
        media.CONTENT_TYPES[fmt[0]],
        headers={"character-cost": str(credits), "request-id": request_id},
        pad_to=fake.knobs.audio_bytes,
    )
