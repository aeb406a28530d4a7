"""Replicate's predictions and files API (api.replicate.com/v1) as the fake server speaks it."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from . import media, snapshots

if TYPE_CHECKING:
    from .server import FakeProviderServer, Job, Request, Response

V1 = "/replicate/v1/"
REAL_ESRGAN = "f121d640bd286e1fdc67f9799164c1d5be36ff74576ee11c803ae5b665dd46aa"
MUSICGEN = "671ac645ce5e552cc63a54a2bbff63fcf798043055d2dac5fc9e36a837eedcfb"
WHISPER = "8099696689d249cf8b122d833c36ac3f75505c666a395ca40ef26f68e7d3d16e"
ASPECTS = {
    "1:1": (1, 1),
    "16:9": (16, 9),
    "21:9": (21, 9),
    "3:2": (3, 2),
    "2:3": (2, 3),
    "4:5": (4, 5),
    "5:4": (5, 4),
    "3:4": (3, 4),
    "4:3": (4, 3),
    "9:16": (9, 16),
    "9:21": (9, 21),
}


def presented_key(req: Request) -> str | None:
    auth = req.headers.get("authorization", "")
    return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


def error(status: int, presented: str = "") -> Response:
    from .server import json_response

    titles = {
        401: ("Unauthenticated", f"You did not pass a valid authentication token ({presented})"),
        402: (
            "Insufficient credit",
            "You have insufficient credit to run this model. Go to "
            "https://replicate.com/account/billing#billing to purchase credit.",
        ),
        400: ("Bad request", "The request body is not valid JSON."),
        422: ("Input validation failed", "- input.prompt: prompt is required"),
        429: ("Request was throttled", "Request was throttled. Your rate limit resets in ~1s."),
    }
    title, detail = titles.get(status, ("Internal server error", "Something went wrong on our end."))
    return json_response({"title": title, "detail": detail, "status": status}, status)


def _invalid(field: str, msg: str) -> Response:
    from .server import json_response

    return json_response(
        {
            "title": "Input validation failed",
            "detail": f"- input.{field}: {msg}",
            "status": 422,
            "invalid_fields": [{"type": "required", "field": f"input.{field}", "description": msg}],
        },
        422,
    )


def _invalid_all(found: list[dict]) -> Response:
    """Replicate's 422 for input that breaks the version's schema: a problem details body listing each field."""
    from .server import json_response

    lines = "\n".join(f"- input.{'.'.join(p['loc'])}: {p['msg']}" for p in found)
    fields = [{"type": p["type"], "field": f"input.{'.'.join(p['loc'])}", "description": p["msg"]} for p in found]
    body = {"title": "Input validation failed", "detail": lines, "status": 422, "invalid_fields": fields}
    return json_response(body, 422)


def _from_snapshot(fake: FakeProviderServer, model: str, args: dict) -> str:
    """The output of a model known only by its snapshot: a file of the kind it makes (`x-fake-makes`); an
    image model given an image (a face restorer) answers that image rescaled by `scale`."""
    snapshot = snapshots.replicate_model(model) if "/" in model else snapshots.replicate_version(model)
    makes = (snapshot or {}).get("x-fake-makes", "image")
    source = args.get("img") or args.get("image")
    if makes == "image" and source:
        width, height = media.probe_image_size(fake.file_bytes(source))
        scale = float(args.get("scale", 2))
        return fake.add_file(media.image(int(width * scale), int(height * scale), "png", 6), "png")
    if makes == "video":
        return fake.add_file(media.video(*fake.knobs.video_size, 1.0, 24, 2), "mp4")
    if makes == "audio":
        return fake.add_file(media.audio(1.5, "mp3", 44100, 1, 2), "mp3")
    return fake.add_file(media.image(64, 48, "png", 6), "png")


def handle(fake: FakeProviderServer, req: Request) -> Response:
    from .server import json_response

    path = req.path.removeprefix(V1)
    submission = req.method == "POST" and (path == "predictions" or path.endswith("/predictions"))
    if blocked := fake.gate("replicate", presented_key(req), error, submission=submission):
        return blocked
    if path == "files" and req.method == "POST":
        _fields, files = req.form()
        name, filename, data, ctype = files[0]
        ext = filename.rsplit(".", 1)[-1]
        url = fake.add_file(data, ext)
        file_id = url.rsplit("/", 1)[-1].split(".")[0]
        return json_response(
            {
                "id": file_id,
                "name": filename,
                "content_type": ctype,
                "size": len(data),
                "etag": file_id,
                "checksums": {},
                "metadata": {},
                "created_at": _iso(time.time()),
                "urls": {"get": f"{fake.url}{V1}files/{file_id}"},
            },
            201,
        )
    if path.startswith("predictions/"):
        pred_id, _, action = path.removeprefix("predictions/").partition("/")
        job = fake.jobs.get(pred_id)
        if job is None or job.provider != "replicate":
            return json_response({"title": "Not found", "detail": "Prediction not found", "status": 404}, 404)
        if action == "cancel" and req.method == "POST" and job.state(time.time()) in ("queued", "running"):
            job.canceled = True
        return json_response(_prediction(fake, job))
    if path == "predictions" and req.method == "GET":
        return _listing(fake, req)
    if req.method == "GET" and path.startswith("models/") and path.count("/") == 2:
        model = snapshots.replicate_model(path.removeprefix("models/"))
        if model is None:
            return json_response({"title": "Not found", "detail": "Model not found", "status": 404}, 404)
        return json_response(model)
    if req.method != "POST":
        return json_response({"title": "Method not allowed", "status": 405}, 405)
    if not req.headers.get("content-type", "").startswith("application/json"):
        return json_response(
            {"title": "Bad request", "detail": "Content-Type must be application/json", "status": 400}, 400
        )
    try:
        body = req.json()
    except ValueError:
        return error(400)
    if path == "predictions":
        model = body.get("version", "")
        model = model.split(":")[-1]  # "owner/name:version" is accepted too
    elif path.startswith("models/") and path.endswith("/predictions"):
        model = path.removeprefix("models/").removesuffix("/predictions")
    else:
        return json_response({"title": "Not found", "status": 404}, 404)
    return _create(fake, model, body.get("input"), req.headers.get("prefer", ""))


def _create(fake: FakeProviderServer, model: str, args: Any, prefer: str) -> Response:
    from .server import Response, json_response

    snapshot = snapshots.replicate_model(model) if "/" in model else snapshots.replicate_version(model)
    if snapshot is not None and isinstance(args, dict):
        if found := snapshots.problems(snapshots.replicate_input_schema(snapshot), args):
            return _invalid_all(found)
    elif model not in MODELS:
        return json_response(
            {
                "title": "Invalid version or not permitted",
                "status": 422,
                "detail": "The specified version does not exist (or perhaps you don't have permission to use it?)",
            },
            422,
        )
    if not isinstance(args, dict):
        return _invalid("input", "input is required")
    if model in MODELS and (problem := MODELS[model][0](fake, args)):
        return _invalid(*problem)
    job = fake.new_job("replicate", model, args)
    if fake.take_drop():
        return Response(drop=True)
    if prefer.startswith("wait"):
        limit = float(prefer.partition("=")[2] or 60)
        deadline = time.time() + limit
        while time.time() < min(deadline, job.finishes):  # the real API holds the request open like this
            time.sleep(0.01)
    return json_response(_prediction(fake, job), 201)


PAGE = 100  # "It will return 100 records per page", newest first (https://replicate.com/docs/reference/http)


def _listing(fake: FakeProviderServer, req: Request) -> Response:
    """GET /v1/predictions: every prediction of the account, most recent first, paged by a `cursor` URL."""
    from .server import json_response

    with fake._lock:
        jobs = sorted((j for j in fake.jobs.values() if j.provider == "replicate"), key=lambda j: -j.submitted)
    start = int(req.query.get("cursor", "0"))
    page = jobs[start : start + PAGE]
    more = start + PAGE < len(jobs)
    return json_response(
        {
            "next": f"{fake.url}{V1}predictions?cursor={start + PAGE}" if more else None,
            "previous": f"{fake.url}{V1}predictions?cursor={max(0, start - PAGE)}" if start else None,
            "results": [_prediction(fake, job) | {"source": "api"} for job in page],
        }
    )


def _prediction(fake: FakeProviderServer, job: Job) -> dict:
    now = time.time()
    state = job.state(now)
    status = {
        "queued": "starting",
        "running": "processing",
        "done": "succeeded",
        "failed": "failed",
        "canceled": "canceled",
    }[state]
    if state == "done" and job.output is None:
        job.output = (
            MODELS[job.model][1](fake, job.input) if job.model in MODELS else _from_snapshot(fake, job.model, job.input)
        )
    finished = state in ("done", "failed")
    base = f"{fake.url}{V1}predictions/{job.id}"
    return {
        "id": job.id,
        "model": job.model,
        "version": job.model if len(job.model) == 64 else "hidden",
        "input": job.input,
        "logs": "",
        "output": job.output if state == "done" else None,
        "data_removed": False,
        "error": job.error if state == "failed" else None,
        "status": status,
        "created_at": _iso(job.submitted),
        "started_at": _iso(job.starts) if now >= job.starts else None,
        "completed_at": _iso(job.finishes) if finished else None,
        "urls": {
            "get": base,
            "cancel": f"{base}/cancel",
            "stream": f"{base}/stream",
            "web": f"https://replicate.com/p/{job.id}",
        },
        "metrics": {
            "predict_time": round(job.finishes - job.starts, 3),
            "total_time": round(job.finishes - job.submitted, 3),
        }
        if finished
        else {},
    }


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


# -- the models: (validate -> (field, message) | None, make output) ------------------------------


def _need(field: str):
    def check(fake: FakeProviderServer, args: dict) -> tuple[str, str] | None:
        value = args.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            return (field, f"{field} is required")
        if field in ("image", "audio") and fake.file_bytes(value) is None:
            return (field, f"could not fetch {field} from {value}")
        return None

    return check


def _flux_schnell(fake: FakeProviderServer, args: dict) -> list[str]:
    ratio_w, ratio_h = ASPECTS[args.get("aspect_ratio", "1:1")]
    pixels = (1024 * 1024) if args.get("megapixels", "1") == "1" else (512 * 512)
    height = int((pixels * ratio_h / ratio_w) ** 0.5) // 16 * 16
    width = int(height * ratio_w / ratio_h) // 16 * 16
    fmt = {"jpg": "jpeg"}.get(args.get("output_format", "webp"), args.get("output_format", "webp"))
    data = media.image(width, height, fmt, media.variant_of(args["prompt"]))
    return [fake.add_file(data, fmt) for _ in range(int(args.get("num_outputs", 1)))]


def _real_esrgan(fake: FakeProviderServer, args: dict) -> str:
    width, height = media.probe_image_size(fake.file_bytes(args["image"]))
    scale = float(args.get("scale", 4))
    return fake.add_file(media.image(int(width * scale), int(height * scale), "png", 2), "png")


def _musicgen(fake: FakeProviderServer, args: dict) -> str:
    fmt = args.get("output_format", "wav")
    data = media.audio(float(args.get("duration", 8)), fmt, 32000, 2, media.variant_of(args["prompt"]))
    return fake.add_file(data, fmt)


def _whisper(fake: FakeProviderServer, args: dict) -> dict:
    seconds = media.probe_duration(fake.file_bytes(args["audio"]))
    text = f"This is a fake transcript of {seconds:.1f} seconds of audio."
    return {
        "segments": [{"id": 0, "start": 0.0, "end": seconds, "text": text}],
        "transcription": text,
        "translation": None,
        "txt_file": None,
        "srt_file": None,
        "detected_language": "english",
    }


def _minimax(fake: FakeProviderServer, args: dict) -> str:
    width, height = fake.knobs.video_size
    return fake.add_file(media.video(width, height, 6.0, 25, media.variant_of(args["prompt"])), "mp4")


MODELS = {
    "black-forest-labs/flux-schnell": (_need("prompt"), _flux_schnell),
    "minimax/video-01": (_need("prompt"), _minimax),
    REAL_ESRGAN: (_need("image"), _real_esrgan),
    MUSICGEN: (_need("prompt"), _musicgen),
    WHISPER: (_need("audio"), _whisper),
}
