"""Prefect's own result and cache records live in an S3 store, so "another machine" (another process with its own
data folder) gets a step from Prefect's cache record there, and reads a pipeline run's return value from there.

The store is S3 on moto (127.0.0.1); boardflow's result index is deleted between the machines, so a hit can only
come from Prefect's record.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import pytest

from flows.engine.caching import record_key
from flows.engine.records import RECORDS

pytestmark = pytest.mark.slow

PREFIX = "studio"
TWO_STEPS = """\
name: shared-records
steps:
  note:
    generator: local/text-template
    inputs: {template: "made on one machine, served on every other"}
  echo:
    generator: local/text-template
    inputs: {template: "and a second note"}
outputs:
  note: ${steps.note.text}
  echo: ${steps.echo.text}
"""

RUN_NAMED_PIPELINE = textwrap.dedent(
    """
    import asyncio, sys
    from deployments.pipelines import run_named_pipeline
    state = asyncio.run(run_named_pipeline(pipeline=sys.argv[1], return_state=True))
    print(state.state_details.flow_run_id, "completed" if state.is_completed() else "failed")
    """
)


def machine_env(tmp_path: Path, name: str, bucket: str, endpoint: str, prefect_api: str) -> dict[str, str]:
    """One "machine": its own data folder (Prefect's default local results included), the shared S3 store."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_RESULTS_LOCAL_STORAGE_PATH"}
    return {
        **env,
        "BOARDFLOW_DATA_DIR": str(tmp_path / name),
        "BOARDFLOW_STORE": f"s3://{bucket}/{PREFIX}",
        "BOARDFLOW_S3_ENDPOINT_URL": endpoint,
        "PREFECT_API_URL": prefect_api,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }


def boardflow_run(spec: Path, env: dict[str, str]) -> dict:
    boardflow = os.path.join(os.path.dirname(sys.executable), "boardflow")
    done = subprocess.run([boardflow, "run", str(spec), "--json"], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def keys(s3, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/{prefix}")
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def record_keys(spec: Path, store_url: str, endpoint: str) -> set[str]:
    """The names Prefect's cache records of the spec's steps have in the store (keyed by step and store)."""
    from flows.pipeline import PipelineSpec
    from flows.pipeline.flow import plan_pipeline
    from generators.storage import open_store

    async def plan() -> set[str]:
        planned = await plan_pipeline(
            PipelineSpec.resolve(str(spec)), {}, store=open_store(store_url, endpoint_url=endpoint)
        )
        calls = [planned.call(step, None) for step in ("note", "echo")]
        return {record_key(store_url, call.key) for call in calls if call is not None and call.key is not None}

    return asyncio.run(plan())


def forget_result_index(s3, bucket: str) -> None:
    """Delete boardflow's own index of results, leaving Prefect's records as the only memory of the steps."""
    for key in keys(s3, bucket, "results/"):
        s3.delete_object(Bucket=bucket, Key=key)


@pytest.fixture
def shared(tmp_path, s3_endpoint, s3_bucket, prefect_api):
    spec = tmp_path / "shared-records.yaml"
    spec.write_text(TWO_STEPS)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    machines = [machine_env(tmp_path, f"machine-{n}", s3_bucket, s3_endpoint, prefect_api) for n in (1, 2)]
    return spec, s3, s3_bucket, machines, s3_endpoint


def test_a_step_cached_on_one_machine_is_a_hit_from_prefects_record_on_another(shared, tmp_path):
    spec, s3, bucket, (one, two), endpoint = shared
    first = boardflow_run(spec, one)
    assert [r["status"] for r in first["records"]] == ["completed", "completed"], first

    expected = record_keys(spec, f"s3://{bucket}/{PREFIX}", endpoint)
    assert len(expected) == 2
    assert {f"{PREFIX}/{RECORDS}/{key}" for key in expected} == set(keys(s3, bucket, f"{RECORDS}/"))
    forget_result_index(s3, bucket)

    again = boardflow_run(spec, two)
    assert [(r["status"], r["remade"]) for r in again["records"]] == [("cached", None), ("cached", None)], again
    assert again["outputs"] == first["outputs"]
    for machine in ("machine-1", "machine-2"):  # nothing of Prefect's was kept on either machine
        assert not any((tmp_path / machine / "prefect-results").glob("*")), machine


def test_a_hit_from_a_shared_record_whose_object_is_gone_is_made_again(shared, tmp_path):
    spec, s3, bucket, (one, two), _ = shared
    first = boardflow_run(spec, one)
    forget_result_index(s3, bucket)
    note = first["outputs"]["note"]["storage_url"].removeprefix(f"s3://{bucket}/")
    s3.delete_object(Bucket=bucket, Key=note)

    again = boardflow_run(spec, two)
    by_step = {r["step"]: (r["status"], r["remade"]) for r in again["records"]}
    assert by_step == {"note": ("completed", "re-made: object missing"), "echo": ("cached", None)}, again
    assert s3.head_object(Bucket=bucket, Key=note)["ContentLength"] > 0


def named_pipeline_on(machine: dict[str, str], pipeline: str) -> tuple[str, str]:
    """Run deployments/pipelines.py's flow as a worker would, in a process of `machine`: (flow run id, outcome)."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_NAMED_PIPELINE, pipeline], env=machine, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_id, outcome = done.stdout.strip().splitlines()[-1].split()
    return run_id, outcome


def read_on_this_machine(run_id: str, machine: dict[str, str], monkeypatch):
    """`run_result` of the run, here. This machine needs no BOARDFLOW_STORE: the run's state names the record's
    URL; only the S3 endpoint is asked."""
    from prefect.client.orchestration import get_client

    from deployments.fanout import run_result

    for name in ("BOARDFLOW_DATA_DIR", "BOARDFLOW_S3_ENDPOINT_URL"):
        monkeypatch.setenv(name, machine[name])

    async def read():
        async with get_client() as client:
            return await run_result(await client.read_flow_run(run_id))

    return asyncio.run(read())


def test_a_pipeline_runs_return_value_written_on_one_machine_is_read_on_another(shared, tmp_path, monkeypatch):
    spec, s3, bucket, (one, two), _ = shared
    run_id, outcome = named_pipeline_on(one, str(spec))
    assert outcome == "completed"
    shutil.rmtree(tmp_path / "machine-1")  # that machine is gone: only the store and the server remain

    result = read_on_this_machine(run_id, two, monkeypatch).model_dump(mode="json")
    assert result["flow_run_id"] == run_id
    assert [r["status"] for r in result["records"]] == ["completed", "completed"], result
    text = result["outputs"]["echo"]["storage_url"]
    assert text.startswith(f"s3://{bucket}/{PREFIX}/objects/"), text
    body = s3.get_object(Bucket=bucket, Key=text.removeprefix(f"s3://{bucket}/"))["Body"].read().decode()
    assert body == "and a second note"


def test_a_failed_runs_error_written_on_one_machine_is_raised_on_another(shared, tmp_path, monkeypatch):
    from generators.errors import InputError

    _, s3, bucket, (one, two), _ = shared
    run_id, outcome = named_pipeline_on(one, str(tmp_path / "no-such-pipeline.yaml"))
    assert outcome == "failed"
    shutil.rmtree(tmp_path / "machine-1", ignore_errors=True)  # it failed before it needed its data folder
    assert keys(s3, bucket, f"{RECORDS}/"), "the run's error was not written to the store"

    with pytest.raises(InputError, match="No pipeline .*no-such-pipeline.yaml"):
        read_on_this_machine(run_id, two, monkeypatch)
