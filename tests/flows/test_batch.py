"""Batch runs: rows checked and planned first, bad rows reported, budget refused, rows isolated, limits held."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from flows.batch.flow import BatchFailedError, batch
from flows.batch.limits import limit_name
from flows.batch.results import COLUMNS
from flows.batch.rows import BatchValidationError
from flows.reporting.costs import artifact_key, read_history
from generators.errors import BudgetExceededError, MediaProcessingError
from generators.media import probe
from tests.flows.kit import Echo, flow_run_artifacts, table_data

EXAMPLES = Path(__file__).resolve().parents[2] / "deployments" / "batches"
# Test generators say provider "local" (limited per process) unless a test is about the Prefect global
# concurrency limit of a hosted provider: each step through one costs API writes, and time, on SQLite.


class Picky(Echo):
    """Echo that fails for the texts in `broken` (a bad input a provider would reject, say)."""

    def __init__(self, *args, broken: set[str] = frozenset(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.broken = set(broken)

    async def generate(self, inputs, context):
        if inputs.text in self.broken:
            raise MediaProcessingError(f"cannot make {inputs.text!r} (test)")
        return await super().generate(inputs, context)


class Gauge(Echo):
    """Echo that records how many of its executions overlap. Executions meet in pairs (a barrier of two):
    with a limit of two slots each pair runs side by side, so the peak is exactly two; a looser limit shows
    as a higher peak, a stricter one as a pair that never meets (the barrier's wait times out)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.active = 0
        self.peak = 0
        self._pairs: asyncio.Barrier | None = None

    async def generate(self, inputs, context):
        self._pairs = self._pairs or asyncio.Barrier(2)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            async with asyncio.timeout(120):  # a safety net against a hang, not a timing window
                await self._pairs.wait()
            return await super().generate(inputs, context)
        finally:
            self.active -= 1


def echo_spec(name: str = "echo-batch", cap: str | None = None, first: str = "test/echo") -> dict:
    return {
        "name": name,
        "max_cost_usd": cap,
        "params": {
            "text": {"type": "string", "required": True},
            "suffix": {"type": "string", "default": "!"},
            "times": {"type": "integer", "default": 1},
            "tags": {"type": "list", "default": []},
        },
        "steps": {
            "say": {"generator": first, "inputs": {"text": "${params.text}"}},
            "tail": {"generator": "test/tail", "inputs": {"text": "${params.suffix}", "source": "${steps.say.text}"}},
        },
        "outputs": {"text": "${steps.tail.text}"},
    }


def write_csv(path: Path, text: str) -> str:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return str(path)


async def run_batch(**kwargs):
    """The batch flow's final state and its result or exception."""
    state = await batch(return_state=True, **kwargs)
    return state, await state.result(raise_on_failure=False)


BAD_ROWS = """
text,times,tags,overrides
first good row,1,"[a, b]",
second row,abc,,
,2,,
third row,1,not: [valid,
fourth row,1,,"{suffix: 5}"
{long},1,,
last good row,3,[c],"{suffix: '?'}"
""".replace("{long}", "x" * 300)


async def test_bad_rows_are_reported_with_row_column_and_reason_and_skipped(prefect_api, data_dir, registry, tmp_path):
    say = registry.register(Echo("test/echo", provider="local"))
    registry.register(Echo("test/tail", provider="local"))
    csv = write_csv(tmp_path / "rows.csv", BAD_ROWS)
    state, result = await run_batch(spec=echo_spec(), rows=csv, results_path=str(tmp_path / "res"))

    assert state.is_completed(), result
    assert sorted(c.text for c in say.calls) == ["first good row", "last good row"]
    table = pd.read_csv(tmp_path / "res.csv", keep_default_na=False)
    status = dict(zip(table["row"], table["status"], strict=True))
    assert status == {
        1: "completed",
        2: "invalid",
        3: "invalid",
        4: "invalid",
        5: "invalid",
        6: "invalid",
        7: "completed",
    }
    errors = dict(zip(table["row"], table["error"], strict=True))
    assert errors[2].startswith("row 2, column times:") and "'abc'" in errors[2]
    assert errors[3] == "row 3, column text: is required by the pipeline and is empty."
    assert errors[4].startswith("row 4, column tags:") and "JSON/YAML" in errors[4]
    assert errors[5].startswith("row 5, column overrides.suffix:") and "must be a string" in errors[5]
    # The generator's own schema caught this one; the problem names the column that fed its input.
    assert errors[6].startswith("row 6, column text:") and "at most 200 characters" in errors[6]
    assert "input say.text of test/echo" in errors[6]
    assert result["invalid"] == 5 and result["completed"] == 2


async def test_strict_aborts_the_batch_with_nothing_run(prefect_api, data_dir, registry, tmp_path):
    say = registry.register(Echo("test/echo", provider="local"))
    registry.register(Echo("test/tail", provider="local"))
    csv = write_csv(tmp_path / "rows.csv", BAD_ROWS)
    state, exc = await run_batch(spec=echo_spec(), rows=csv, strict=True, results_path=str(tmp_path / "res"))

    assert state.is_failed()
    assert isinstance(exc, BatchValidationError)
    assert [(p.row, p.column) for p in exc.problems] == [
        (2, "times"), (3, "text"), (4, "tags"), (5, "overrides.suffix"), (6, "text"),
    ]  # fmt: skip
    assert "nothing was run" in str(exc)
    assert say.calls == []
    assert not (tmp_path / "res.csv").exists()


async def test_over_budget_batch_is_refused_and_in_batch_repeats_are_counted_once(
    prefect_api, data_dir, registry, tmp_path
):
    paid = registry.register(Echo("test/echo", provider="local", estimate="0.30"))
    registry.register(Echo("test/tail", provider="local"))
    rows = [{"text": t} for t in ("a", "b", "c")]
    state, exc = await run_batch(spec=echo_spec(cap="0.60"), rows=rows)
    assert state.is_failed() and isinstance(exc, BudgetExceededError)
    assert "plans $0.90, over the cap $0.60; nothing was run" in str(exc)
    assert paid.calls == []

    # --max-cost overrides the pipeline's cap; and a row repeating an earlier row's inputs is a cache hit,
    # so a b a plans 2 × $0.30 = $0.60, within $0.60, and runs.
    state, result = await run_batch(spec=echo_spec(cap="0.10"), rows=[rows[0], rows[1], rows[0]], max_cost_usd=0.6)
    assert state.is_completed(), result
    assert sorted(c.text for c in paid.calls) == ["a", "b"]
    assert Decimal(result["spent_usd"]) == Decimal("0.60")


async def test_one_failing_row_does_not_stop_the_others_and_only_failed_reruns_it(
    prefect_api, data_dir, registry, tmp_path
):
    say = registry.register(Picky("test/echo", provider="local", broken={"row two"}))
    registry.register(Echo("test/tail", provider="local"))
    csv = write_csv(tmp_path / "rows.csv", "text\nrow one\nrow two\nrow three")
    first = tmp_path / "first"
    state, exc = await run_batch(spec=echo_spec(), rows=csv, results_path=str(first), concurrency=2)

    assert state.is_failed() and isinstance(exc, BatchFailedError)
    assert "row 2: say: cannot make 'row two'" in str(exc) and f"--only-failed {first}.csv" in exc.hint
    assert sorted(c.text for c in say.calls) == ["row one", "row three"]
    for table in (pd.read_csv(f"{first}.csv", keep_default_na=False), pd.read_parquet(f"{first}.parquet")):
        assert list(table.columns) == COLUMNS
        assert list(table["status"]) == ["completed", "failed", "completed"]
    table = pd.read_csv(f"{first}.csv", keep_default_na=False)
    assert all(url.startswith("file://") for url in table["output_urls"][[0, 2]])
    assert table["output_urls"][1] == "" and "cannot make 'row two'" in table["error"][1]

    # Each row that ran is its own subflow run, named after its row, with its own state.
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        failed_row = await client.read_flow_run(table["flow_run_id"][1])
    assert failed_row.name == "echo-batch · row 2" and failed_row.state.is_failed()

    batch_run = state.state_details.flow_run_id
    artifacts = await flow_run_artifacts(batch_run)
    progress = artifacts[artifact_key("echo-batch", "batch-progress")]
    assert progress.data == 100.0 and "2 done · 1 failed · 0 remaining" in progress.description
    rows = table_data(artifacts[artifact_key("echo-batch", "batch-results")])
    assert [r["status"] for r in rows] == ["completed", "failed", "completed"]

    say.broken.clear()  # the cause is fixed
    calls_before = len(say.calls)
    state, result = await run_batch(
        spec=echo_spec(), rows=csv, only_failed=f"{first}.csv", results_path=str(tmp_path / "second")
    )
    assert state.is_completed(), result
    assert [c.text for c in say.calls[calls_before:]] == ["row two"]
    again = pd.read_csv(tmp_path / "second.csv", keep_default_na=False)
    assert list(again["row"]) == [2] and list(again["status"]) == ["completed"]


async def test_rerunning_a_successful_batch_costs_nothing_and_runs_no_generator(
    prefect_api, data_dir, registry, tmp_path
):
    say = registry.register(Echo("test/echo", provider="local", estimate="0.01", actual="0.02"))
    tail = registry.register(Echo("test/tail", provider="local"))
    rows = [{"text": t, "suffix": "."} for t in ("one", "two", "three")]
    state, first = await run_batch(spec=echo_spec(cap="1.00"), rows=rows, results_path=str(tmp_path / "a"))
    assert state.is_completed(), first
    ran = str(state.state_details.flow_run_id)
    assert Decimal(first["spent_usd"]) == Decimal("0.06") and len(say.calls) == 3 and len(tail.calls) == 3

    state, again = await run_batch(spec=echo_spec(cap="1.00"), rows=rows, results_path=str(tmp_path / "b"))
    assert state.is_completed(), again
    assert (len(say.calls), len(tail.calls)) == (3, 3)
    assert Decimal(again["spent_usd"]) == 0 and Decimal(again["saved_usd"]) == Decimal("0.06")
    a = pd.read_csv(tmp_path / "a.csv", keep_default_na=False)
    b = pd.read_csv(tmp_path / "b.csv", keep_default_na=False)
    assert list(b["status"]) == ["cached"] * 3 and list(b["output_urls"]) == list(a["output_urls"])

    # Each batch's own run carries the cost table of all its rows' steps and their summary, like a pipeline run.
    served = str(state.state_details.flow_run_id)
    for run_id, spent, saved in ((ran, "$0.06", "$0.00"), (served, "$0.00", "$0.06")):
        artifacts = await flow_run_artifacts(run_id)
        table = table_data(artifacts[artifact_key("echo-batch", "batch-costs")])
        assert sorted((r["row"], r["step"]) for r in table) == [(n, s) for n in (1, 2, 3) for s in ("say", "tail")]
        summary = artifacts[artifact_key("echo-batch", "batch-cost-summary")]
        assert f"spent {spent}** (planned" in summary.description and f"saved {saved}**" in summary.description
        assert "| local | 6 |" in summary.data
    assert {r["actual"] for r in table_data(artifacts[artifact_key("echo-batch", "batch-costs")])} == {"$0.00"}

    # `boardflow costs` counts each step once: the batch's table, not also its rows' own tables.
    history = await read_history("echo-batch")
    for run_id, spent in ((ran, 0.06), (served, 0.0)):
        mine = history[history["flow_run_id"] == run_id]
        assert len(mine) == 6 and round(mine["actual_usd"].sum(), 6) == spent
    subflows = set(a["flow_run_id"])
    assert not subflows & set(history["flow_run_id"]), "a row's steps were counted twice"


async def test_provider_limit_holds_across_rows_and_across_batches(prefect_api, data_dir, registry, monkeypatch):
    provider = f"gauge{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv(f"BOARDFLOW_CONCURRENCY_{provider.upper()}", "2")
    gauge = registry.register(Gauge("test/echo", provider=provider))
    registry.register(Echo("test/tail", provider="local"))
    # Two batches at once, three rows each, three rows at a time: six overlapping chances, two slots.
    runs = await asyncio.gather(
        *(run_batch(spec=echo_spec(), rows=[{"text": f"{b}-{i}"} for i in range(3)], concurrency=3) for b in "xy")
    )
    assert all(state.is_completed() for state, _ in runs), runs
    assert len(gauge.calls) == 6
    assert gauge.peak == 2

    from prefect.client.orchestration import get_client

    async with get_client() as client:
        limit = await client.read_global_concurrency_limit_by_name(limit_name(provider))
    assert (limit.limit, limit.active_slots) == (2, 0)


@pytest.mark.slow
async def test_example_csv_makes_real_slides_and_a_rerun_comes_from_cache(prefect_api, data_dir, registry, tmp_path):
    csv = str(EXAMPLES / "slideshow-small.csv")
    state, result = await run_batch(spec="slideshow", rows=csv, results_path=str(tmp_path / "slides"))
    assert state.is_completed(), result
    table = pd.read_csv(tmp_path / "slides.csv", keep_default_na=False)
    assert list(table["status"]) == ["completed"] * 3
    # Rows 1 and 2 share mood, length and seed: the music was made once and served to the other row.
    assert sorted(table["cached_steps"][:2]) == [0, 1]
    for url in table["output_urls"]:
        info = probe(Path(url.removeprefix("file://")), "video")
        assert (info.width, info.height) == (320, 180) and info.has_audio
        assert info.duration == pytest.approx(1.5, abs=0.1)
    artifacts = await flow_run_artifacts(state.state_details.flow_run_id)
    previews = artifacts[artifact_key("slideshow", "batch-previews")].description
    assert previews.count("data:image/webp;base64,") == 3  # one animated preview per row's video

    state, again = await run_batch(spec="slideshow", rows=csv, results_path=str(tmp_path / "again"))
    assert state.is_completed(), again
    assert (again["cached"], again["completed"], Decimal(again["spent_usd"])) == (3, 0, 0)
    assert list(pd.read_csv(tmp_path / "again.csv")["output_urls"]) == list(table["output_urls"])


async def _s3_store_block(registry, s3_endpoint: str, s3_bucket: str, prefix: str) -> str:
    """Registers the echo pipeline's generators and saves an S3 artifact-store block; returns its name."""
    from blocks import ArtifactStoreBlock

    registry.register(Echo("test/echo", provider="local"))
    registry.register(Echo("test/tail", provider="local"))
    name = f"{prefix}-store-{uuid.uuid4().hex[:8]}"
    await ArtifactStoreBlock(bucket=s3_bucket, prefix=prefix, endpoint_url=s3_endpoint).asave(name)
    return name


def _s3_text(s3_endpoint: str, s3_bucket: str, url: str) -> str:
    import boto3

    body = boto3.client("s3", endpoint_url=s3_endpoint).get_object(Bucket=s3_bucket, Key=url.split("/", 3)[3])
    return body["Body"].read().decode()


async def test_a_batch_keeps_its_artifacts_where_the_store_block_says(
    prefect_api, data_dir, registry, tmp_path, s3_endpoint, s3_bucket
):
    name = await _s3_store_block(registry, s3_endpoint, s3_bucket, "nightly")
    state, result = await run_batch(
        spec=echo_spec(), rows=[{"text": "kept on s3"}], store_block=name, results_path=str(tmp_path / "s3")
    )
    assert state.is_completed(), result
    (url,) = pd.read_csv(tmp_path / "s3.csv")["output_urls"]
    assert url.startswith(f"s3://{s3_bucket}/nightly/objects/")
    assert _s3_text(s3_endpoint, s3_bucket, url) == "! | kept on s3"


async def test_the_pipeline_deployments_flow_keeps_its_artifacts_where_the_store_block_says(
    prefect_api, data_dir, registry, tmp_path, s3_endpoint, s3_bucket
):
    """`deployments/pipelines.py:run_named_pipeline` (the `pipeline` deployment) takes store_block like a batch."""
    import yaml

    from deployments.pipelines import run_named_pipeline

    name = await _s3_store_block(registry, s3_endpoint, s3_bucket, "runs")
    spec_path = tmp_path / "echo.yaml"
    spec_path.write_text(yaml.safe_dump(echo_spec()))
    state = await run_named_pipeline(
        pipeline=str(spec_path), params={"text": "one run on s3"}, store_block=name, return_state=True
    )
    assert state.is_completed(), await state.result(raise_on_failure=False)
    url = (await state.result()).outputs["text"].storage_url
    assert url.startswith(f"s3://{s3_bucket}/runs/objects/")
    assert _s3_text(s3_endpoint, s3_bucket, url) == "! | one run on s3"


def test_batch_command_shows_the_plan_and_skipped_rows_and_strict_runs_nothing(
    prefect_api, data_dir, registry, tmp_path
):
    import yaml
    from typer.testing import CliRunner

    from cli.app import app

    say = registry.register(Echo("test/echo", provider="local"))
    registry.register(Echo("test/tail", provider="local"))
    spec = tmp_path / "echo.yaml"
    spec.write_text(yaml.safe_dump(echo_spec()), encoding="utf-8")
    csv = write_csv(tmp_path / "rows.csv", "text,times\nfirst,1\nsecond,two\nthird,3")
    out = tmp_path / "cli"
    ran = CliRunner().invoke(app, ["batch", str(spec), csv, "--set", "suffix=?", "--out", str(out)])
    assert ran.exit_code == 0, ran.output
    assert "Batch plan for echo-batch: 2 row(s)" in ran.output
    assert "these rows are skipped" in ran.output and "must be an integer, got str 'two'" in ran.output
    assert "2 completed · 0 from cache · 0 failed · 1 invalid" in ran.output
    assert sorted(c.text for c in say.calls) == ["first", "third"]
    assert list(pd.read_csv(f"{out}.csv")["status"]) == ["completed", "invalid", "completed"]

    strict = CliRunner().invoke(app, ["batch", str(spec), csv, "--strict", "--out", str(tmp_path / "strict")])
    assert strict.exit_code == 1
    assert "nothing was run" in strict.output and "row 2, column times" in strict.output
    assert len(say.calls) == 2 and not (tmp_path / "strict.csv").exists()
