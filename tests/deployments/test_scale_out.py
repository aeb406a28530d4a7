"""Scale-out: two process workers on one pool share a Prefect server and S3; rows spread, re-runs hit the cache."""

from __future__ import annotations

import asyncio

import boto3
import pytest
from prefect.client.schemas.objects import FlowRun

from deployments.fanout import DEPLOYMENT, run_result, submit_rows, wait_for_runs
from deployments.local_server import PrefectServer, prefect_executable, stop_process, wait_until
from generators.media import probe
from tests.deployments.kit import POOL, on, online_workers, start_moto

pytestmark = pytest.mark.slow

BUCKET, PREFIX = "boardflow-shared", "studio"
WORKERS = ("worker-a", "worker-b")
# Six slides, small and short: distinct pictures, and music shared by rows of one mood (made once, by one worker).
ROWS = [
    {"prompt": prompt, "mood": mood, "motion": motion, "duration": 2.0, "image_size": "512x512",
     "resolution": "320x180", "fps": 24, "seed": 7}
    for prompt, mood, motion in [
        ("a lighthouse on a cliff at dawn", "calm", "zoom-in"),
        ("a fishing village in morning mist", "calm", "pan-right"),
        ("a forest path in golden light", "dreamy", "pan-left"),
        ("purple mountains under the stars", "dreamy", "zoom-out"),
        ("a red kite over green hills", "upbeat", "pan-up"),
        ("a storm over a dark sea", "tense", "zoom-in"),
    ]
]  # fmt: skip


def start_worker(server, name: str, endpoint: str, data_dir):
    """`prefect worker start` on the pool, with the shared store (S3) and the shared result/lock folder."""
    return server.spawn(
        [prefect_executable(), "worker", "start", "--pool", POOL, "--type", "process", "--name", name, "--limit", "3"],
        f"{name}.log",
        BOARDFLOW_STORE=f"s3://{BUCKET}/{PREFIX}",
        BOARDFLOW_S3_ENDPOINT_URL=endpoint,
        BOARDFLOW_DATA_DIR=str(data_dir),
        PREFECT_WORKER_QUERY_SECONDS="1",  # pick up new runs within a second, not the default 10
        PREFECT_WORKER_HEARTBEAT_SECONDS="5",
        PREFECT_LOGGING_LEVEL="INFO",  # the worker's log file says what it picked up and how each run ended
    )


def run_rows(server: PrefectServer, rows: list[dict], tag: str) -> list[FlowRun]:
    ids = on(server, lambda c: submit_rows(DEPLOYMENT, "slideshow", rows, tags=[tag], client=c))
    try:
        runs = on(server, lambda c: wait_for_runs(ids, timeout=300, client=c))
    except TimeoutError:
        print(*(server.log_tail(f"{w}.log") for w in WORKERS), sep="\n----\n")
        raise
    failed = [r for r in runs if not r.state.is_completed()]
    assert not failed, [(r.name, r.state_name, r.state.message) for r in failed]
    return runs


def test_two_workers_share_rows_store_and_cache(deployed: PrefectServer, tmp_path, monkeypatch):
    server = deployed
    endpoint = start_moto(server, BUCKET)
    monkeypatch.setenv("BOARDFLOW_S3_ENDPOINT_URL", endpoint)  # the runs' results are read from the bucket
    shared_data = tmp_path / "shared-data"  # Prefect's cache records and locks: one folder both workers see
    workers = {name: start_worker(server, name, endpoint, shared_data) for name in WORKERS}
    wait_until(lambda: on(server, lambda c: online_workers(c, POOL)) >= set(WORKERS), 90, "both workers online")

    first = run_rows(server, ROWS, "first")
    ran_on = [r.labels.get("prefect.worker.name") for r in first]  # runs come back in row order
    assert set(ran_on) == set(WORKERS), f"the rows did not spread over both workers: {ran_on}"

    s3 = boto3.client("s3", endpoint_url=endpoint)
    results = [asyncio.run(run_result(r)).model_dump(mode="json") for r in first]
    for name, result in enumerate(results, start=1):
        video = result["outputs"]["video"]
        assert video["storage_url"].startswith(f"s3://{BUCKET}/{PREFIX}/objects/"), video["storage_url"]
        key = video["storage_url"].removeprefix(f"s3://{BUCKET}/")
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ContentLength"] == video["size_bytes"], f"row {name}"
        local = tmp_path / f"{video['sha256']}.mp4"
        s3.download_file(BUCKET, key, str(local))
        media = probe(local, "video")  # decoded: the slide a person would watch
        assert (media.width, media.height) == (320, 180) and media.has_audio, (name, media)
        assert media.duration == pytest.approx(2.0, abs=0.1), (name, media.duration)
    # Rows of one mood share a music bed: made once, taken from the cache by the other row's run.
    music = [rec for res in results for rec in res["records"] if rec["step"] == "music"]
    assert sum(not rec["cached"] for rec in music) == len({row["mood"] for row in ROWS})

    # worker-b leaves; its rows run again on worker-a and come wholly from the cache worker-b filled.
    stop_process(workers["worker-b"])
    rows_b = [i for i, worker in enumerate(ran_on) if worker == "worker-b"]
    again = run_rows(server, [ROWS[i] for i in rows_b], "again")
    assert {r.labels.get("prefect.worker.name") for r in again} == {"worker-a"}
    for i, run in zip(rows_b, again, strict=True):
        result = asyncio.run(run_result(run)).model_dump(mode="json")
        assert result["records"] and all(rec["cached"] for rec in result["records"]), (i + 1, result["records"])
        assert sum(float(rec["actual_usd"]) for rec in result["records"]) == 0
        assert result["outputs"]["video"]["sha256"] == results[i]["outputs"]["video"]["sha256"], i + 1
