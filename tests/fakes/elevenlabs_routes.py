"""ElevenLabs text-to-speech and sound-generation endpoints as the fake server speaks them."""

from __future__ import annotations

import math
import time
import uuid
from typing import TYPE_CHECKING, Any

from . import media, snapshots

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


def _check(path: str, body: Any) -> Response | None:
    """The API reference's rules: the body's schema (422 with FastAPI's detail list), then the model's limits."""
    from .server import json_response

    doc = snapshots.elevenlabs_doc()
    endpoint = "sound-generation" if path == "/v1/sound-generation" else "text-to-speech"
    if found := snapshots.problems(doc[endpoint], body):
        return json_response({"detail": [{**p, "loc": ["body", *p["loc"]]} for p in found]}, 422)
    model = body.get(
        "model_id", "eleven_multilingual_v2" if endpoint == "text-to-speech" else "eleven_text_to_sound_v2"
    )
    facts = doc["models"].get(model)
    if facts is None or facts["endpoint"] != endpoint:
        return _detail(400, "model_not_found", f"A model with model ID {model} does not exist or cannot do {endpoint}.")
    if "language_code" in body and not facts.get("language_code", True):
        return _detail(400, "unsupported_language", f"Model '{model}' does not support the language_code parameter.")
    if len(body["text"]) > facts.get("max_characters", 1 << 30):
        # The status name and the message's shape are ElevenLabs' own ("API - Error Code 400 or 401",
        # help.elevenlabs.io/hc/en-us/articles/19572237925521, read 2026-12-04).
        return _detail(
            400,
            "max_character_limit_exceeded",
            f"This request's text has {len(body['text'])} characters and exceeds the character limit of "
            f"{facts['max_characters']} characters for {model}.",
        )
    return None


def generated(
    fake: FakeProviderServer,
    voice_id: str,
    model: str,
    text: str,
    output_format: str = "mp3_44100_128",
    credits: int | None = None,
    request_id: str | None = None,
    audio: bytes = b"",
) -> dict:
    """A speech generation in the account's history (also one made elsewhere: the web app, another program)."""
    with fake._lock:
        used_before = fake.history[-1]["character_count_change_to"] if fake.history else 0
        item = {
            "history_item_id": uuid.uuid4().hex[:20],
            "date_unix": int(time.time()),
            "character_count_change_from": used_before,
            "character_count_change_to": used_before + (len(text) if credits is None else credits),
            "content_type": "audio/mpeg" if output_format.startswith("mp3") else "audio/ogg",
            "state": None,
            "request_id": request_id or uuid.uuid4().hex,
            "voice_id": voice_id,
            "model_id": model,
            "voice_name": "George",
            "voice_category": "premade",
            "text": text,
            "settings": {},
            "source": "TTS",
            "output_format": output_format,
        }
        if not fake.stale():  # a request from before the last reset belongs to an earlier test
            fake.history.append(item | {"audio": audio})
    return item


HISTORY_FILTERS = ("voice_id", "model_id", "source")


def _history(fake: FakeProviderServer, req: Request) -> Response:
    """GET /v1/history (newest first, paged by start_after_history_item_id) and GET /v1/history/{id}/audio, as
    https://elevenlabs.io/docs/api-reference/history/list describes them (read 2026-12-03)."""
    from .server import Response, json_response

    with fake._lock:
        items = list(reversed(fake.history))
    rest = req.path.removeprefix("/elevenlabs/v1/history").strip("/")
    if rest:
        found = [i for i in items if rest == f"{i['history_item_id']}/audio"]
        if not found:
            return _detail(404, "history_item_not_found", f"History item {rest.split('/')[0]} was not found.")
        return Response(200, found[0]["audio"], found[0]["content_type"], pad_to=fake.knobs.audio_bytes)
    q = req.query
    if not q.get("page_size", "100").isdigit() or not 1 <= int(q.get("page_size", "100")) <= 1000:
        return json_response({"detail": [{"loc": ["query", "page_size"], "msg": "Input should be at most 1000"}]}, 422)
    items = [i for i in items if all(q.get(f) in (None, i[f]) for f in HISTORY_FILTERS)]
    items = [i for i in items if i["date_unix"] >= int(q.get("date_after_unix", 0))]
    if "date_before_unix" in q:
        items = [i for i in items if i["date_unix"] < int(q["date_before_unix"])]
    if after := q.get("start_after_history_item_id"):
        ids = [i["history_item_id"] for i in items]
        if after not in ids:
            return _detail(400, "invalid_history_item_id", f"History item {after} was not found.")
        items = items[ids.index(after) + 1 :]
    page = [{k: v for k, v in i.items() if k != "audio"} for i in items[: int(q.get("page_size", "100"))]]
    return json_response(
        {
            "history": page,
            "has_more": len(items) > len(page),
            "last_history_item_id": page[-1]["history_item_id"] if page else None,
            "scanned_until": page[-1]["date_unix"] if page else None,
        }
    )


def handle(fake: FakeProviderServer, req: Request) -> Response:
    from .server import Response, json_response

    if blocked := fake.gate("elevenlabs", presented_key(req), error, submission=req.method == "POST"):
        return blocked
    if req.method == "GET" and req.path.startswith("/elevenlabs/v1/history"):
        return _history(fake, req)
    if req.method != "POST":
        return json_response({"detail": "Method Not Allowed"}, 405)
    if not req.headers.get("content-type", "").startswith("application/json"):
        return _detail(400, "invalid_content_type", "Content-Type must be application/json.")
    try:
        body: dict[str, Any] = req.json()
    except ValueError:
        return _detail(400, "invalid_json", "The request body is not valid JSON.")
    if rejected := _check(req.path.removeprefix("/elevenlabs"), body):
        return rejected
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
    data = media.audio(seconds, fmt[0], fmt[1], 1, media.variant_of(text))
    fake.bill("elevenlabs", model, request_id, body)
    # The history lists speech, not sound effects ("Music and SFX generations are not included":
    # https://elevenlabs.io/docs/api-reference/history/list, read 2026-12-03).
    if path.startswith("/v1/text-to-speech/") and fake.knobs.elevenlabs_history:
        voice = path.removeprefix("/v1/text-to-speech/")
        fmt_name = req.query.get("output_format", "mp3_44100_128")
        generated(fake, voice, model, text, fmt_name, credits, request_id, data)
    if fake.take_drop():
        return Response(drop=True)
    return Response(
        200,
        data,
        media.CONTENT_TYPES[fmt[0]],
        headers={"character-cost": str(credits), "request-id": request_id},
        pad_to=fake.knobs.audio_bytes,
    )
