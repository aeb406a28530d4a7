"""Kie's Suno API (api.kie.ai) as the fake server speaks it: create a task, read its record.

Every answer is Kie's envelope `{"code", "msg", "data"}`; a refusal carries its code in the body (HTTP 200),
see snapshots/kie.json for what of this is confirmed.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from . import media, snapshots

if TYPE_CHECKING:
    from .server import FakeProviderServer, Request, Response

PREFIX = "/kie/api/v1/"
MESSAGES = {
    400: "Parameter error",
    401: "You do not have access permissions",
    402: "Insufficient credits",
    404: "Not found",
    422: "Validation error",
    429: "Rate limited",
    455: "Service under maintenance",
    500: "Server error",
}


def presented_key(req: Request) -> str | None:
    auth = req.headers.get("authorization", "")
    return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


def envelope(code: int, msg: str, data: Any = None) -> Response:
    from .server import json_response

    return json_response({"code": code, "msg": msg, "data": data}, 200)


def error(status: int, presented: str = "") -> Response:
    code = 455 if status == 503 else status
    answer = envelope(code, MESSAGES.get(code, "Server error"))
    if status == 429:  # the fake's forced 429s keep their HTTP status too, so Retry-After means something
        answer.status = 429
    return answer


def _refusal(body: Any) -> Response | None:
    doc = snapshots.kie_doc()
    if found := snapshots.problems(doc["generate"], body):
        first = found[0]
        where = ".".join(first["loc"]) or "(body)"
        return envelope(422, f"{where}: {first['type']} ({first['msg'][:120]})")
    limits = doc["limits"][body["model"]]
    for field, most in limits.items():
        if body.get("customMode") and len(body.get(field) or "") > most:
            return envelope(422, f"{field}: string_too_long (at most {most} characters for {body['model']})")
    return None


def handle(fake: FakeProviderServer, req: Request) -> Response:
    if denied := fake.gate("kie", presented_key(req), error, submission=req.method == "POST"):
        return denied
    path = req.path.removeprefix(PREFIX)
    if req.method == "POST" and path == "generate":
        if not req.headers.get("content-type", "").startswith("application/json"):
            return envelope(400, "Content-Type must be application/json")
        try:
            body = json.loads(req.body or b"null")
        except ValueError:
            return envelope(400, "The request body is not valid JSON")
        if not isinstance(body, dict):
            return envelope(400, "The request body must be a JSON object")
        if refused := _refusal(body):
            return refused
        job = fake.new_job("kie", body["model"], body)
        if fake.take_drop():
            from .server import Response

            return Response(drop=True)
        return envelope(200, "success", {"taskId": job.id})
    if req.method == "GET" and path == "generate/record-info":
        job = fake.jobs.get(req.query.get("taskId", ""))
        if job is None or job.provider != "kie":
            return envelope(404, f"task {req.query.get('taskId')!r} not found")
        return envelope(200, "success", _record(fake, job))
    return envelope(404, f"no such endpoint: {req.method} {req.path}")


def _record(fake: FakeProviderServer, job) -> dict[str, Any]:
    state = job.state(time.time())
    status = {"queued": "PENDING", "running": "TEXT_SUCCESS", "failed": "GENERATE_AUDIO_FAILED"}.get(state, "SUCCESS")
    tracks = []
    if status == "SUCCESS":
        if job.output is None:
            job.output = [
                {
                    "id": uuid.uuid4().hex,
                    "audioUrl": fake.add_file(media.audio(2.0, "mp3", variant=i), "mp3"),
                    "title": job.input.get("title") or "Untitled",
                    "modelName": "chirp-v5",
                    "duration": 2.0,
                }
                for i in range(snapshots.kie_doc()["tracks_per_task"])
            ]
        tracks = job.output
    failed = status == "GENERATE_AUDIO_FAILED"
    return {
        "taskId": job.id,
        "param": json.dumps(job.input),
        "response": {"taskId": job.id, "sunoData": tracks},
        "status": status,
        "type": "GENERATE",
        "errorCode": 501 if failed else None,
        "errorMessage": "Generation failed (fake)" if failed else None,
    }
