"""The content cache: hits across processes, misses on changed bytes, re-runs when objects are gone, one run per key."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from prefect import flow

from flows.engine.caching import cache_key
from flows.engine.tasks import generator_task
from flows.pipeline import plan_pipeline
from flows.pipeline.spec import PipelineSpec
from tests.flows.kit import COUNTER_ENV, Echo, bound, by_step, run_spec
from tests.flows.run_tiny_pipeline import RECORDS_MARK

REPO = Path(__file__).resolve().parents[2]


def run_in_new_process(prefect_api: str, data_dir: Path, counter: Path) -> list[dict]:
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "BOARDFLOW_DATA_DIR": str(data_dir),
        COUNTER_ENV: str(counter),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.flows.run_tiny_pipeline"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith(RECORDS_MARK))
    return json.loads(line.removeprefix(RECORDS_MARK))


def stored_objects(data_dir: Path) -> set[Path]:
    return {p for p in (data_dir / "store" / "objects").rglob("*") if p.is_file() and p.suffix != ".json"}


def test_a_second_process_takes_every_step_from_the_cache(prefect_api, data_dir, tmp_path):
    counter = tmp_path / "executions.txt"
    first = run_in_new_process(prefect_api, data_dir, counter)
    assert {r["status"] for r in first} == {"completed"}
    assert counter.read_text().splitlines() == ["test/echo tiny"]
    objects = stored_objects(data_dir)
    assert {p.suffix for p in objects} >= {".png", ".mp4", ".wav", ".txt"}

    second = run_in_new_process(prefect_api, data_dir, counter)
    assert sorted(r["step"] for r in second) == sorted(r["step"] for r in first)
    assert all(r["cached"] and r["status"] == "cached" for r in second), second
    assert all(r["compute_seconds"] == 0 and float(r["actual_usd"]) == 0 for r in second)
    assert counter.read_text().splitlines() == ["test/echo tiny"], "the generator ran again"
    assert stored_objects(data_dir) == objects, "a cached run wrote new media"


class _Files(BaseHTTPRequestHandler):
    served: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.served.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def file_server(monkeypatch):
    """An HTTP server on 127.0.0.1 whose files the test can change; downloads from it are allowed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    monkeypatch.setenv("BOARDFLOW_ALLOWED_HOSTS", f"{host}:{port}")
    yield f"http://{host}:{port}"
    server.shutdown()
    server.server_close()


def png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, "PNG")
    return buf.getvalue()


def image_at(url: str, data: bytes) -> dict:
    return {
        "kind": "image",
        "sha256": hashlib.sha256(data).hexdigest(),
        "storage_url": url,
        "format": "png",
        "size_bytes": len(data),
        "width": 16,
        "height": 16,
    }


async def test_new_bytes_behind_the_same_url_miss_the_cache(prefect_api, data_dir, registry, file_server):
    echo = registry.register(Echo())
    spec = {
        "name": "same-url",
        "params": {"still": {"type": "object", "required": True}},
        "steps": {"look": {"generator": "test/echo", "inputs": {"text": "look", "image": "${params.still}"}}},
        "outputs": {"text": "${steps.look.text}"},
    }
    url = f"{file_server}/still.png"
    red, blue = png((200, 30, 30)), png((30, 30, 200))
    _Files.served["/still.png"] = red
    state, first = await run_spec(spec, params={"still": image_at(url, red)})
    assert state.is_completed(), first
    _Files.served["/still.png"] = blue  # the file behind the URL changes; the URL does not
    state, second = await run_spec(spec, params={"still": image_at(url, blue)})
    assert state.is_completed(), second
    assert [r["status"] for r in second["records"]] == ["completed"]
    assert len(echo.calls) == 2
    assert hashlib.sha256(blue).hexdigest()[:12] in second["outputs"]["text"]["content"]
    assert first["outputs"]["text"]["sha256"] != second["outputs"]["text"]["sha256"]

    state, third = await run_spec(spec, params={"still": image_at(url, blue)})
    assert [r["status"] for r in third["records"]] == ["cached"]
    assert len(echo.calls) == 2

    def key(artifact: dict) -> str:
        return cache_key(echo, echo.parse_inputs({"text": "look", "image": artifact}).model_dump(mode="json"))

    assert key(image_at(url, red)) != key(image_at(url, blue))
    assert key(image_at(url, blue)) == key(image_at("https://elsewhere.example/b.png", blue)), "the URL leaked in"


CHAIN = {
    "name": "chain",
    "steps": {
        "first": {"generator": "test/echo", "inputs": {"text": "first"}},
        "second": {"generator": "test/echo", "inputs": {"text": "second", "source": "${steps.first.text}"}},
    },
    "outputs": {"text": "${steps.second.text}"},
}


async def test_a_hit_whose_objects_were_deleted_runs_again(prefect_api, data_dir, data_store, registry):
    echo = registry.register(Echo())
    state, result = await run_spec(CHAIN)
    assert state.is_completed(), result
    first_text = await _first_output(data_store, echo)
    key = data_store.key_for(first_text["storage_url"])
    await data_store.delete(key)

    plan = await plan_pipeline(PipelineSpec.parse(CHAIN), {}, data_store)
    assert [sum(s.cached) for s in plan.steps] == [0, 0], "the plan promised a hit it cannot deliver"

    state, again = await run_spec(CHAIN)
    assert state.is_completed(), again
    statuses = {step: rs[0]["status"] for step, rs in by_step(again["records"]).items()}
    assert statuses == {"first": "completed", "second": "cached"}  # same bytes again → same downstream key
    assert [c.text for c in echo.calls] == ["first", "second", "first"]
    assert await data_store.exists(key)


async def test_an_indexed_result_without_a_cache_record_is_reused_not_made_again(
    prefect_api, data_dir, data_store, registry
):
    """A run killed after indexing a step's result but before Prefect wrote its cache record."""
    from flows.engine.caching import result_storage_path

    echo = registry.register(Echo())
    state, result = await run_spec(CHAIN)
    assert state.is_completed(), result
    records = [p for p in result_storage_path().rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert records, "Prefect wrote no cache records"
    for record in records:
        record.unlink()
    objects_before = {
        k: (await data_store.read_json(k)) for k in await data_store.list_keys("objects") if k.endswith(".json")
    }

    state, again = await run_spec(CHAIN)
    assert state.is_completed(), again
    assert [c.text for c in echo.calls] == ["first", "second"], "a step with an indexed result ran again"
    assert [r["status"] for r in again["records"]] == ["cached", "cached"]
    assert all(float(r["actual_usd"]) == 0 and r["compute_seconds"] == 0 for r in again["records"])
    objects_after = {
        k: (await data_store.read_json(k)) for k in await data_store.list_keys("objects") if k.endswith(".json")
    }
    assert objects_after == objects_before, "reusing a result stored its artifacts again"


async def test_a_result_cached_in_another_store_is_made_again_in_this_one(
    prefect_api, data_dir, data_store, registry, monkeypatch
):
    """Switching BOARDFLOW_STORE (say local → S3) must not hand back URLs of the store left behind."""
    from generators.storage import LocalStore

    echo = registry.register(Echo())
    state, result = await run_spec(CHAIN)
    assert state.is_completed(), result
    elsewhere = LocalStore(data_dir / "other-store")
    monkeypatch.setenv("BOARDFLOW_STORE", elsewhere.root_url)

    state, again = await run_spec(CHAIN)
    assert state.is_completed(), again
    assert [r["status"] for r in again["records"]] == ["completed", "completed"]
    assert again["outputs"]["text"]["storage_url"].startswith(elsewhere.root_url + "/")
    assert len(echo.calls) == 4

    state, third = await run_spec(CHAIN)  # and in the new store the cache works as before
    assert [r["status"] for r in third["records"]] == ["cached", "cached"] and len(echo.calls) == 4


async def _first_output(store, echo: Echo) -> dict:
    inputs = echo.parse_inputs({"text": "first"}).model_dump(mode="json")
    result = await store.read_json(f"results/{cache_key(echo, inputs)}.json")
    return result["outputs"]["text"]


async def test_refresh_runs_every_step_again(prefect_api, data_dir, registry):
    echo = registry.register(Echo())
    await run_spec(CHAIN)
    state, again = await run_spec(CHAIN, refresh=True)
    assert state.is_completed(), again
    assert [r["status"] for r in again["records"]] == ["completed", "completed"]
    assert len(echo.calls) == 4


async def test_identical_steps_of_one_pipeline_execute_once(prefect_api, data_dir, registry):
    slow = registry.register(Echo("test/slow", work_seconds=0.5))
    spec = {
        "name": "twins",
        "steps": {
            "left": {"generator": "test/slow", "inputs": {"text": "same"}},
            "right": {"generator": "test/slow", "inputs": {"text": "same"}},
        },
    }
    state, result = await run_spec(spec)
    assert state.is_completed(), result
    assert len(slow.calls) == 1
    assert sorted(r["status"] for r in result["records"]) == ["cached", "completed"]


async def test_concurrent_calls_of_one_task_execute_once(prefect_api, data_dir, data_store):
    slow = Echo("test/slow", work_seconds=0.5)
    task = generator_task(slow, data_store)
    call = await bound(slow, {"text": "together"})

    @flow
    async def both_at_once() -> list[str]:
        states = await asyncio.gather(
            task(call=call, step="a", return_state=True), task(call=call, step="b", return_state=True)
        )
        return sorted(s.name for s in states)

    assert await both_at_once() == ["Cached", "Completed"]
    assert len(slow.calls) == 1
