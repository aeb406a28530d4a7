"""`boardflow batch --on-workers`: rows become runs of the `pipeline` deployment on two workers ("machines" with
their own data folders), at most --concurrency in flight, and the batch writes the same results table.

A real `prefect server start` with prefect.yaml deployed (the package fixture), moto's S3 on 127.0.0.1.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from deployments.local_server import PrefectServer, prefect_executable, stop_process, wait_until
from tests.deployments.kit import POOL, ROOT, on, online_workers, start_moto
from tests.deployments.test_scale_out import BUCKET, PREFIX

pytestmark = pytest.mark.slow

WORKERS = ("machine-a", "machine-b")
NOTE = """\
name: worker-note
params:
  who: {type: string, required: true, description: Who the note is for.}
  count: {type: integer, default: 1, description: How many.}
steps:
  note:
    generator: local/text-template
    inputs: {template: "{count} note(s) for {who}", parameters: {who: "${params.who}", count: "${params.count}"}}
  shared:
    generator: local/text-template
    inputs: {template: "the same for every row"}
outputs:
  note: ${steps.note.text}
"""
ROWS = [{"who": who, "count": str(n)} for n, who in enumerate(["ada", "bob", "cy", "dee"], start=1)]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["who", "count"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def start_worker(server: PrefectServer, name: str, endpoint: str, data_dir: Path, locks: str):
    """A worker of its own "machine": one run at a time, its own data folder, the shared S3 store and locks."""
    return server.spawn(
        [prefect_executable(), "worker", "start", "--pool", POOL, "--type", "process", "--name", name, "--limit", "1"],
        f"{name}.log",
        BOARDFLOW_STORE=f"s3://{BUCKET}/{PREFIX}",
        BOARDFLOW_S3_ENDPOINT_URL=endpoint,
        BOARDFLOW_DATA_DIR=str(data_dir),
        BOARDFLOW_LOCKS=locks,
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_HEARTBEAT_SECONDS="5",
        PREFECT_LOGGING_LEVEL="INFO",
    )


def batch(server: PrefectServer, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    boardflow = os.path.join(os.path.dirname(sys.executable), "boardflow")
    return subprocess.run(
        [boardflow, "batch", *args], cwd=ROOT, env={**server.env(), **env}, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip


@pytest.fixture
def caller(tmp_path) -> dict[str, str]:
    """The machine the batch is started from: its own data folder."""
    return {"BOARDFLOW_DATA_DIR": str(tmp_path / "caller")}


def test_errors_name_the_missing_server_or_worker(deployed: PrefectServer, tmp_path, caller):
    spec = tmp_path / "note.yaml"
    spec.write_text(NOTE)
    rows = write_csv(tmp_path / "rows.csv", ROWS[:1])
    no_server = batch(deployed, {**caller, "PREFECT_API_URL": ""}, str(spec), str(rows), "--on-workers")
    assert no_server.returncode == 1 and "PREFECT_API_URL is not set" in no_server.stderr, no_server.stderr
    assert "boardflow server" in no_server.stderr and "Traceback" not in no_server.stderr

    assert not on(deployed, lambda c: online_workers(c, POOL))
    idle = batch(deployed, caller, str(spec), str(rows), "--on-workers")
    assert idle.returncode == 1 and f"No worker is polling work pool '{POOL}'" in idle.stderr, idle.stderr
    assert f"prefect worker start --pool {POOL}" in idle.stderr and "Traceback" not in idle.stderr


def test_a_batch_on_two_workers_writes_the_results_table_and_reruns_only_failed(
    deployed: PrefectServer, tmp_path, caller, redis_url
):
    server = deployed
    endpoint = start_moto(server, BUCKET)
    workers = {name: start_worker(server, name, endpoint, tmp_path / name, redis_url) for name in WORKERS}
    try:
        wait_until(lambda: on(server, lambda c: online_workers(c, POOL)) >= set(WORKERS), 90, "both workers online")
        env = {**caller, "BOARDFLOW_STORE": f"s3://{BUCKET}/{PREFIX}", "BOARDFLOW_S3_ENDPOINT_URL": endpoint}
        spec = tmp_path / "note.yaml"
        spec.write_text(NOTE)
        bad = [*ROWS[:2], {"who": "eve", "count": "many"}, *ROWS[2:]]  # row 3 is invalid: count is no integer
        rows = write_csv(tmp_path / "rows.csv", bad)
        out = tmp_path / "results"
        done = batch(server, env, str(spec), str(rows), "--on-workers", "-c", "2", "--out", str(out), "--json")
        assert done.returncode == 0, done.stderr[-3000:]
        summary = json.loads(done.stdout)
        assert (summary["rows"], summary["completed"], summary["invalid"]) == (5, 4, 1), summary
        table = list(csv.DictReader((tmp_path / "results.csv").open()))
        assert [r["status"] for r in table] == ["completed", "completed", "invalid", "completed", "completed"]
        s3 = boto3.client("s3", endpoint_url=endpoint)
        for row, who, count in [(1, "ada", 1), (2, "bob", 2), (4, "cy", 3), (5, "dee", 4)]:
            url = table[row - 1]["output_urls"]
            assert url.startswith(f"s3://{BUCKET}/{PREFIX}/objects/"), table[row - 1]
            body = s3.get_object(Bucket=BUCKET, Key=url.removeprefix(f"s3://{BUCKET}/"))["Body"].read().decode()
            assert body == f"{count} note(s) for {who}", row
        # The shared step was made once, by whichever row got there first (the machines meet at its lock in Redis);
        # every other row had it cached.
        assert sum(int(r["cached_steps"]) for r in table if r["status"] == "completed") == 3, table

        runs = on(server, lambda c: read_row_runs(c, [r["flow_run_id"] for r in table if r["flow_run_id"]]))
        assert {run.labels.get("prefect.worker.name") for run in runs} == set(WORKERS), "one worker took every row"
        assert max_in_flight(runs) <= 2
        artifact = on(server, lambda c: results_artifact(c, summary["run_id"]))
        assert [row["status"] for row in artifact] == [r["status"] for r in table]

        # Fix row 3's cell and run only the rows that did not complete: one run, on whichever worker is free.
        fixed = write_csv(tmp_path / "rows.csv", [*ROWS[:2], {"who": "eve", "count": "5"}, *ROWS[2:]])
        again = batch(
            server, env, str(spec), str(fixed), "--on-workers", "--only-failed", str(tmp_path / "results.csv"),
            "--out", str(tmp_path / "again"),
        )  # fmt: skip
        assert again.returncode == 0, again.stderr[-3000:]
        assert "1 completed · 0 from cache · 0 failed · 0 invalid" in again.stdout, again.stdout  # the terminal's table

        # Every row is in the cache now: the plan reads them back and nothing is submitted.
        cached = batch(server, env, str(spec), str(fixed), "--on-workers", "--out", str(tmp_path / "cached"))
        assert cached.returncode == 0, cached.stderr[-3000:]
        table = list(csv.DictReader((tmp_path / "cached.csv").open()))
        assert [(r["status"], r["flow_run_id"]) for r in table] == [("cached", "")] * 5, table
        rerun = list(csv.DictReader((tmp_path / "again.csv").open()))
        assert [(r["row"], r["status"]) for r in rerun] == [("3", "completed")], rerun
    finally:
        for process in workers.values():
            stop_process(process)


async def read_row_runs(client, ids: list[str]):
    from deployments.fanout import read_runs

    return await read_runs([__import__("uuid").UUID(i) for i in ids], client=client)


def max_in_flight(runs) -> int:
    """The most runs that were submitted and not yet finished at one moment."""
    edges = sorted([(r.created, 1) for r in runs] + [(r.end_time, -1) for r in runs], key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


async def results_artifact(client, run_id: str) -> list[dict]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType

    found = await client.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]), type=ArtifactFilterType(any_=["table"])
        )
    )
    table = next(a for a in found if a.key and a.key.endswith("batch-results"))
    data = table.data
    return json.loads(data) if isinstance(data, str) else data
