"""fal's queue API (queue.fal.run), CDN token (rest.fal.ai) and CDN uploads (v3.fal.media) as the fake speaks them.

The upload protocol is the official clients' (github.com/fal-ai/fal, fal_client/client.py): a token from
`POST /storage/auth/token?storage_type=fal-cdn-v3`, then `POST <base_url>/files/upload` with the bytes, or
for large files `POST <base_url>/files/upload/multipart`, `PUT <access_url>/multipart/<id>/<n>` per part
(answered with an ETag) and `POST <access_url>/multipart/<id>/complete` with the parts.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any

from . import media, snapshots

if TYPE_CHECKING:
    from .server import FakeProviderServer, Request, Response

QUEUE, REST, CDN = "/fal/queue/", "/fal/rest/", "/fal/cdn/"
CDN_TOKEN = "fake-cdn-token-5e1f"
MAX_BODY = 100 * 1024 * 1024  # one request's body limit at fal's CDN; larger files must go up in parts
IMAGE_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}


def presented_key(req: Request) -> str | None:
    auth = req.headers.get("authorization", "")
    return auth.removeprefix("Key ") if auth.startswith("Key ") else None


def error(status: int, presented: str = "") -> Response:
    from .server import json_response

    if status == 401:
        return json_response({"detail": f"Invalid API key: {presented}"}, 401)
    if status == 402:  # fal answers an empty account with 403 and this text
        return json_response(
            {"detail": "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."},
            403,
        )
    if status in (400, 422):
        return _invalid("prompt", "field required")
    if status == 429:
        return json_response({"detail": "Too many requests, slow down."}, 429)
    return json_response({"detail": "Internal Server Error"}, status)


def _invalid(field: str, msg: str) -> Response:
    from .server import json_response

    return json_response({"detail": [{"loc": ["body", field], "msg": msg, "type": "value_error"}]}, 422)


def handle(fake: FakeProviderServer, req: Request) -> Response:
    from .server import json_response

    if req.path.startswith(CDN) or "/multipart/" in req.path:  # the CDN: the token, never the key
        return _cdn(fake, req)
    if req.path == "/fal/openapi/queue/openapi.json" and req.method == "GET":  # public: no key needed
        doc = snapshots.fal_doc(req.query.get("endpoint_id", ""))
        if doc is None:
            return json_response({"detail": f"Endpoint {req.query.get('endpoint_id')!r} not found"}, 404)
        return json_response(doc)
    rest = req.path.startswith(REST)
    submission = req.method == "POST" and not rest
    if blocked := fake.gate("fal", presented_key(req), error, submission=submission):
        return blocked
    if rest and req.path == REST + "storage/auth/token" and req.method == "POST":
        if req.query.get("storage_type") != "fal-cdn-v3":
            return json_response({"detail": "unknown storage_type"}, 400)
        return json_response(
            {
                "token": CDN_TOKEN,
                "token_type": "Bearer",
                "base_url": f"{fake.url}{CDN.rstrip('/')}",
                "expires_at": "2099-01-01T00:00:00+00:00",
            }
        )
    tail = req.path.removeprefix(QUEUE)
    if "/requests/" in tail:
        app, _, rest_path = tail.partition("/requests/")
        request_id, _, action = rest_path.partition("/")
        job = fake.jobs.get(request_id)
        if job is None or job.provider != "fal":
            return json_response({"detail": f"Request {request_id} not found"}, 404)
        return _job_route(fake, job, app, req.method, action)
    if req.method != "POST":
        return json_response({"detail": "Method Not Allowed"}, 405)
    if not req.headers.get("content-type", "").startswith("application/json"):
        return json_response({"detail": "Content-Type must be application/json"}, 400)
    try:
        args = req.json()
    except ValueError:
        return json_response({"detail": "The request body is not valid JSON"}, 400)
    return _submit(fake, tail, args)


def _cdn(fake: FakeProviderServer, req: Request) -> Response:
    from .server import Response, json_response

    if req.headers.get("authorization") != f"Bearer {CDN_TOKEN}":
        return json_response({"detail": "a CDN token is required (and the API key is refused here)"}, 401)
    fake.cdn_requests.append((req.method, req.path, len(req.body)))
    if len(req.body) > fake.knobs.fal_max_body:
        return json_response({"detail": "Payload Too Large"}, 413)
    if req.method == "POST" and req.path == CDN + "files/upload":
        ext = req.headers.get("x-fal-file-name", "upload.bin").rsplit(".", 1)[-1]
        name = f"{time.time_ns()}.{ext}"
        with fake._lock:
            fake.files[name] = (req.body, req.headers.get("content-type", "application/octet-stream"))
        return json_response({"access_url": f"{fake.url}/files/{name}"})
    if req.method == "POST" and req.path == CDN + "files/upload/multipart":
        ext = req.headers.get("x-fal-file-name", "upload.bin").rsplit(".", 1)[-1]
        name, upload_id = f"{time.time_ns()}.{ext}", f"up-{time.time_ns()}"
        fake.multipart[upload_id] = (name, req.headers.get("content-type", "application/octet-stream"), {})
        return json_response({"access_url": f"{fake.url}/files/{name}", "uploadId": upload_id})
    name, _, rest = req.path.removeprefix("/files/").partition("/multipart/")
    upload_id, _, part = rest.partition("/")
    if upload_id not in fake.multipart or fake.multipart[upload_id][0] != name:
        return json_response({"detail": "unknown upload"}, 404)
    _, ctype, parts = fake.multipart[upload_id]
    if req.method == "PUT" and part.isdigit():
        parts[int(part)] = req.body
        return Response(200, b"", "text/plain", headers={"ETag": f'"etag-{part}"'})
    if req.method == "POST" and part == "complete":
        listed = [p["partNumber"] for p in json.loads(req.body)["parts"]]
        if listed != sorted(parts) or listed != list(range(1, len(parts) + 1)):
            return json_response({"detail": f"parts {listed} do not match the uploaded {sorted(parts)}"}, 400)
        with fake._lock:
            fake.files[name] = (b"".join(parts[n] for n in listed), ctype)
        return json_response({"access_url": f"{fake.url}/files/{name}"})
    return json_response({"detail": "Not Found"}, 404)


def _submit(fake: FakeProviderServer, endpoint: str, args: Any) -> Response:
    from .server import Response, json_response

    doc = snapshots.fal_doc(endpoint)
    if endpoint not in MODELS and doc is None:
        return json_response({"detail": f"Application '{endpoint}' not found"}, 404)
    if endpoint in MODELS and (problem := MODELS[endpoint][0](fake, args)):
        return _invalid(*problem)
    job = fake.new_job("fal", endpoint, args)
    found = snapshots.problems(snapshots.fal_input_schema(doc, endpoint), args) if doc else []
    if fake.knobs.reject_input or found:  # fal validates in the runner: the request is queued, run, then refused
        job.error = "Unprocessable Entity"
        job.output = [{**p, "loc": ["body", *p["loc"]]} for p in found]
    if fake.take_drop():
        return Response(drop=True)
    app = "/".join(endpoint.split("/")[:2])  # like fal: the URLs name the app, not the endpoint's sub-path
    base = f"{fake.url}{QUEUE}{app}/requests/{job.id}"
    return json_response(
        {
            "status": "IN_QUEUE",
            "request_id": job.id,
            "queue_position": 0,
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }
    )


def _job_route(fake: FakeProviderServer, job: Any, app: str, method: str, action: str) -> Response:
    from .server import json_response

    state = job.state(time.time())
    base = f"{fake.url}{QUEUE}{app}/requests/{job.id}"
    if action == "status" and method == "GET":
        if state == "queued":
            return json_response({"status": "IN_QUEUE", "queue_position": 0, "response_url": base}, 202)
        if state == "running":
            return json_response({"status": "IN_PROGRESS", "response_url": base, "logs": None}, 202)
        out = {"status": "COMPLETED", "response_url": base, "logs": None, "metrics": {"inference_time": 0.05}}
        if state in ("failed", "canceled"):
            out |= {"error": job.error or "Request was cancelled", "error_type": "runner_error"}
        return json_response(out, 200)
    if action == "cancel" and method == "PUT":
        if state in ("done", "failed"):
            return json_response({"status": "ALREADY_COMPLETED"}, 400)
        job.canceled = True
        return json_response({"status": "CANCELLATION_REQUESTED"}, 202)
    if action == "" and method == "GET":
        if state in ("queued", "running"):
            return json_response({"detail": "Request is still in progress"}, 400)
        if state == "failed" and job.error == "Unprocessable Entity":  # fal's error shape (docs.fal.ai/errors)
            detail = job.output or [{"loc": ["body", "prompt"], "msg": "rejected by the model", "type": "value_error"}]
            return json_response({"detail": detail}, 422)
        if state in ("failed", "canceled"):
            return json_response({"detail": job.error or "Request was cancelled"}, 500)
        if job.output is None:
            if job.model in MODELS:
                job.output = MODELS[job.model][1](fake, job.input)
            else:
                job.output = _from_snapshot(fake, job.model, job.input)
        return json_response(job.output)
    return json_response({"detail": "Not Found"}, 404)


# -- the models: (validate -> (field, message) | None, make output) ------------------------------


def _size(args: dict) -> tuple[int, int]:
    size = args.get("image_size", "landscape_4_3")
    return (size["width"], size["height"]) if isinstance(size, dict) else IMAGE_SIZES[size]


def _check_flux(fake: FakeProviderServer, args: Any) -> tuple[str, str] | None:
    if not isinstance(args, dict) or not str(args.get("prompt", "")).strip():
        return ("prompt", "field required")
    size = args.get("image_size", "landscape_4_3")
    if not isinstance(size, dict) and size not in IMAGE_SIZES:
        return ("image_size", f"unexpected value; permitted: {', '.join(IMAGE_SIZES)}")
    if not 1 <= int(args.get("num_images", 1)) <= 4:
        return ("num_images", "ensure this value is between 1 and 4")
    return None


def _flux(fake: FakeProviderServer, args: dict) -> dict:
    width, height = _size(args)
    fmt = args.get("output_format", "jpeg")
    data = media.image(width, height, fmt, media.variant_of(args["prompt"]))
    images = [
        {"url": fake.add_file(data, fmt), "width": width, "height": height, "content_type": f"image/{fmt}"}
        for _ in range(int(args.get("num_images", 1)))
    ]
    return {
        "images": images,
        "timings": {"inference": 0.05},
        "seed": 42,
        "has_nsfw_concepts": [False] * len(images),
        "prompt": args["prompt"],
    }


def _check_image_url(fake: FakeProviderServer, args: Any) -> tuple[str, str] | None:
    if not isinstance(args, dict) or "image_url" not in args:
        return ("image_url", "field required")
    if fake.file_bytes(args["image_url"]) is None:
        return ("image_url", "could not download the file at image_url")
    return None


def _clarity(fake: FakeProviderServer, args: dict) -> dict:
    factor = float(args.get("upscale_factor", 2))
    width, height = media.probe_image_size(fake.file_bytes(args["image_url"]))
    out_w, out_h = math.floor(width * factor), math.floor(height * factor)
    data = media.image(out_w, out_h, "png", 1)
    return {
        "image": {
            "url": fake.add_file(data, "png"),
            "content_type": "image/png",
            "file_name": "upscaled.png",
            "file_size": len(data),
            "width": out_w,
            "height": out_h,
        },
        "seed": 7,
        "timings": {},
    }


def _check_kling(fake: FakeProviderServer, args: Any, needs_image: bool) -> tuple[str, str] | None:
    if not isinstance(args, dict) or not str(args.get("prompt", "")).strip():
        return ("prompt", "field required")
    if str(args.get("duration", "5")) not in ("5", "10"):
        return ("duration", "unexpected value; permitted: '5', '10'")
    return _check_image_url(fake, args) if needs_image else None


def _kling(fake: FakeProviderServer, args: dict) -> dict:
    width, height = fake.knobs.video_size
    if args.get("aspect_ratio") == "9:16":
        width, height = height, width
    elif args.get("aspect_ratio") == "1:1":
        width = height
    data = media.video(width, height, float(args.get("duration", "5")), 24, media.variant_of(args["prompt"]))
    return {
        "video": {
            "url": fake.add_file(data, "mp4"),
            "content_type": "video/mp4",
            "file_name": "output.mp4",
            "file_size": len(data),
        }
    }


def _from_snapshot(fake: FakeProviderServer, endpoint: str, args: dict) -> dict:
    """An answer for an endpoint known only by its snapshot: media of the kind its category names, in the output
    field its schema has (an upscaler's image is its input scaled by upscale_factor)."""
    doc = snapshots.fal_doc(endpoint)
    assert doc is not None
    output = next(s for n, s in doc["components"]["schemas"].items() if n.endswith("Output"))
    field = next(iter(output["properties"]))
    kind = doc["info"]["x-fal-metadata"]["category"].rpartition("-to-")[2]
    if kind == "text":
        return {field: "This is a fake transcript.", "chunks": []}
    if kind == "image" and "image_url" in args:
        width, height = media.probe_image_size(fake.file_bytes(args["image_url"]))
        factor = float(args.get("upscale_factor", 2))
        width, height = math.floor(width * factor), math.floor(height * factor)
    else:
        width, height = 64, 48
    if kind == "image":
        data, ext = media.image(width, height, "png", 5), "png"
    elif kind == "video":
        data, ext = media.video(*fake.knobs.video_size, 1.0, 24, 3), "mp4"
    else:
        data, ext = media.audio(1.5, "mp3", 44100, 1, 2), "mp3"
    file = {"url": fake.add_file(data, ext), "content_type": CONTENT[ext]}
    if kind == "image":
        file |= {"width": width, "height": height}
    return {field: [file] if output["properties"][field].get("type") == "array" else file, "seed": 1}


CONTENT = {"png": "image/png", "mp4": "video/mp4", "mp3": "audio/mpeg"}


MODELS = {
    "fal-ai/flux/dev": (_check_flux, _flux),
    "fal-ai/flux/schnell": (_check_flux, _flux),
    "fal-ai/clarity-upscaler": (_check_image_url, _clarity),
    "fal-ai/kling-video/v2.1/standard/image-to-video": (lambda f, a: _check_kling(f, a, True), _kling),
    "fal-ai/kling-video/v2.5-turbo/pro/text-to-video": (lambda f, a: _check_kling(f, a, False), _kling),
}
