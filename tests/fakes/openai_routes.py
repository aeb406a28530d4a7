"""OpenAI's images (generations, edits), speech and transcription endpoints as the fake server speaks them."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from . import media, snapshots

if TYPE_CHECKING:
    from .server import FakeProviderServer, Request, Response

V1 = "/openai/v1/"
SIZES = {"1024x1024": (1024, 1024), "1536x1024": (1536, 1024), "1024x1536": (1024, 1536)}
# The usage the fake reports for an image request. Both figures stand in for numbers OpenAI does not publish for
# the models the fake serves, and both match boardflow's catalogue because there is only one published source:
# - output tokens: the table OpenAI's image generation guide gives for gpt-image-1 by quality and size (the same
#   table openai.yaml transcribes for the shut-down gpt-image-1 entries). No such table was found for gpt-image-2
#   (searched 2026-12-04), so the fake reports gpt-image-1's counts for it;
# - input image tokens: 765 per image part, gpt-image-1's count for a 1024x1024 input at high detail. OpenAI's own
#   rule for image input tokens (by size, per model) was not found in the search corpora on 2026-12-04, only
#   third-party restatements of it, so the fake does not compute tokens from the image's size.
# A test that compares boardflow's estimate with what the fake reports therefore checks arithmetic, not OpenAI.
OUTPUT_TOKENS = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}
# Models each endpoint serves today (openai-openapi's model enums, less what the deprecations page has shut
# down: gpt-image-1 on 2026-10-23; gpt-image-1.5, gpt-image-1-mini and chatgpt-image-latest on 2026-12-01).
MODELS = {
    "images/generations": {"gpt-image-2", "gpt-image-2-2026-04-21"},
    "images/edits": {"gpt-image-2", "gpt-image-2-2026-04-21"},
    "audio/speech": {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15"},
    "audio/transcriptions": {
        "whisper-1",
        "gpt-transcribe",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-transcribe-2025-12-15",
        "gpt-4o-transcribe-diarize",
    },
}
SCHEMAS = {
    "images/generations": "CreateImageRequest",
    "images/edits": "CreateImageEditRequest",
    "audio/speech": "CreateSpeechRequest",
    "audio/transcriptions": "CreateTranscriptionRequest",
}


def _check(schema_name: str, body: Any) -> Response | None:
    """OpenAI's 400 for a body its reference refuses: the first problem, naming the parameter."""
    found = snapshots.problems(snapshots.openai_doc()[schema_name], body)
    if not found:
        return None
    param = ".".join(found[0]["loc"]) or None
    if found[0]["type"] == "missing":
        return _error(400, f"Missing required parameter: '{param}'.", "invalid_request_error", None, param)
    if found[0]["type"] == "extra_forbidden":
        return _error(400, f"Unrecognized request argument supplied: {found[0]['msg']}", "invalid_request_error", None)
    message = f"Invalid value for '{param}': {found[0]['msg']}"
    return _error(400, message, "invalid_request_error", "invalid_value", param)


VOICES = {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse"}


def presented_key(req: Request) -> str | None:
    auth = req.headers.get("authorization", "")
    return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


def _error(status: int, message: str, type_: str, code: str | None, param: str | None = None) -> Response:
    from .server import json_response

    return json_response({"error": {"message": message, "type": type_, "param": param, "code": code}}, status)


def error(status: int, presented: str = "") -> Response:
    if status == 401:
        return _error(
            401,
            f"Incorrect API key provided: {presented}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )
    if status == 402:  # OpenAI answers an account without credit with 429 insufficient_quota
        return _error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        )
    if status in (400, 422):
        return _error(
            400,
            "Invalid value for 'size': must be one of 1024x1024, 1536x1024, 1024x1536, auto.",
            "invalid_request_error",
            "invalid_value",
            "size",
        )
    if status == 429:
        return _error(
            429, "Rate limit reached for gpt-image-2 on images per minute (IPM).", "requests", "rate_limit_exceeded"
        )
    return _error(
        status, "The server had an error while processing your request. Sorry about that!", "server_error", None
    )


def handle(fake: FakeProviderServer, req: Request) -> Response:
    from .server import json_response

    if blocked := fake.gate("openai", presented_key(req), error):
        return blocked
    path = req.path.removeprefix(V1)
    if req.method != "POST":
        return _error(405, "Method not allowed", "invalid_request_error", None)
    if path in ("images/generations", "audio/speech"):
        if not req.headers.get("content-type", "").startswith("application/json"):
            return _error(400, "Content-Type must be application/json.", "invalid_request_error", None)
        try:
            req.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error", None)
    if path in MODELS:
        body = req.json() if path in ("images/generations", "audio/speech") else snapshots.form_values(req.form()[0])
        if rejected := _check(SCHEMAS[path], body):
            return rejected
        model = body.get("model")
        if model not in MODELS[path]:
            return _error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
    if path == "images/generations":
        return _images(fake, req.json(), [])
    if path == "images/edits":
        fields, files = req.form()
        images = [data for name, _fn, data, _ct in files if name in ("image", "image[]")]
        if not images:
            return _error(400, "Missing required parameter: 'image'.", "invalid_request_error", None, "image")
        return _images(fake, fields, images)
    if path == "audio/speech":
        return _speech(fake, req.json())
    if path == "audio/transcriptions":
        fields, files = req.form()
        return _transcribe(fake, fields, files)
    return json_response({"error": {"message": f"Invalid URL (POST /v1/{path})", "type": "invalid_request_error"}}, 404)


def _images(fake: FakeProviderServer, body: dict[str, Any], inputs: list[bytes]) -> Response:
    from .server import Response, json_response

    prompt = str(body.get("prompt", ""))
    if not prompt.strip():
        return _error(400, "Missing required parameter: 'prompt'.", "invalid_request_error", None, "prompt")
    size, quality, n = body.get("size", "auto"), body.get("quality", "auto"), int(body.get("n", 1))
    if size not in (*SIZES, "auto"):
        return error(400)
    if size == "auto":
        size = "1024x1024"
    quality = "high" if quality == "auto" else quality
    fake.bill("openai", str(body.get("model")), f"img-{len(fake.submissions('openai'))}", {"prompt": prompt, "n": n})
    if fake.take_drop():
        return Response(drop=True)
    fmt = body.get("output_format", "png")
    width, height = SIZES[size]
    data = base64.b64encode(media.image(width, height, fmt, media.variant_of(prompt))).decode()
    text_tokens, image_tokens = len(prompt) // 4 + 1, 765 * len(inputs)
    return json_response(
        {
            "created": 1_760_000_000,
            "data": [{"b64_json": data} for _ in range(n)],
            "usage": {
                "input_tokens": text_tokens + image_tokens,
                "output_tokens": OUTPUT_TOKENS[quality][size] * n,
                "total_tokens": text_tokens + image_tokens + OUTPUT_TOKENS[quality][size] * n,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
            },
        }
    )


def _speech(fake: FakeProviderServer, body: dict[str, Any]) -> Response:
    from .server import Response

    text = str(body.get("input", ""))
    if not text.strip() or len(text) > 4096:
        return _error(400, "'input' must be 1 to 4096 characters.", "invalid_request_error", None, "input")
    if body.get("voice") not in VOICES:
        return _error(400, f"Invalid value for 'voice': {body.get('voice')!r}.", "invalid_request_error", None, "voice")
    fmt = body.get("response_format", "mp3")
    fake.bill("openai", body.get("model", ""), f"tts-{len(fake.submissions('openai'))}", body)
    if fake.take_drop():
        return Response(drop=True)
    seconds = max(1.0, round(len(text) / 15 / float(body.get("speed", 1.0)), 2))
    data = media.audio(seconds, fmt, 24000, 1, media.variant_of(text))
    return Response(200, data, media.CONTENT_TYPES[fmt], pad_to=fake.knobs.audio_bytes)


def _transcribe(fake: FakeProviderServer, fields: dict[str, str], files: list) -> Response:
    from .server import Response, json_response

    uploads = [data for name, _fn, data, _ct in files if name == "file"]
    if not uploads:
        return _error(400, "Missing required parameter: 'file'.", "invalid_request_error", None, "file")
    seconds = media.probe_duration(uploads[0])
    fake.bill("openai", fields.get("model", ""), f"stt-{len(fake.submissions('openai'))}", fields)
    text = f"This is a fake transcript of {seconds:.1f} seconds of audio."
    fmt = fields.get("response_format", "json")
    if fmt == "text":
        return Response(200, text.encode(), "text/plain")
    if fmt == "verbose_json":
        return json_response(
            {"task": "transcribe", "language": "english", "duration": round(seconds, 2), "text": text, "segments": []}
        )
    # CreateTranscriptionResponseJson: whisper-1 reports the seconds it billed; the gpt-4o models report tokens.
    if fields.get("model") == "whisper-1":
        return json_response({"text": text, "usage": {"type": "duration", "seconds": round(seconds)}})
    return json_response(
        {"text": text, "usage": {"type": "tokens", "input_tokens": 20, "output_tokens": 12, "total_tokens": 32}}
    )
