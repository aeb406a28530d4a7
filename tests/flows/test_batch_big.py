"""Big batches: a row cap refused up front, planning that streams (memory flat in the row count), results
written as rows finish, and a batch bigger than one planned part run part by part."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bench.plan_bench import write_csv as write_slides
from cli.app import app
from flows.batch.flow import prepare_batch
from flows.batch.results import RowResult
from flows.batch.rows import HELD_ROWS
from flows.batch.source import RowSource
from flows.batch.writer import KEPT_RESULTS, ResultsWriter
from flows.pipeline.spec import PipelineSpec
from generators.errors import InputError
from generators.storage import open_store
from tests.flows.kit import Echo
from tests.flows.test_batch import echo_spec, run_batch


def write_rows(path: Path, count: int, bad: set[int] = frozenset()) -> str:
    """A CSV of `count` echo rows; the rows numbered in `bad` have a `times` that is no integer."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("text,times\n")
        for n in range(1, count + 1):
            fh.write(f"row {n},{'many' if n in bad else n}\n")
    return str(path)


async def test_a_batch_over_the_row_cap_is_refused_naming_cap_count_and_fix(prefect_api, data_dir, registry, tmp_path):
    say = registry.register(Echo("test/echo", provider="local"))
    registry.register(Echo("test/tail", provider="local"))
    csv = write_rows(tmp_path / "rows.csv", 30)
    state, exc = await run_batch(spec=echo_spec(), rows=csv, max_rows=20, results_path=str(tmp_path / "res"))
    assert state.is_failed() and isinstance(exc, InputError)
    message = f"{exc.message} {exc.hint}"
    for needle in ("has 30 rows", "row cap of 20", "nothing was run", "--max-rows", "BOARDFLOW_MAX_BATCH_ROWS"):
        assert needle in message, (needle, message)
    assert say.calls == [] and not (tmp_path / "res.csv").exists()


def test_the_cli_refuses_a_csv_over_the_cap_before_prefect_starts(data_dir, registry, tmp_path, monkeypatch):
    csv = write_rows(tmp_path / "rows.csv", 12)
    monkeypatch.setenv("BOARDFLOW_MAX_BATCH_ROWS", "10")  # no Prefect server here: a refusal must come first
    env = {"COLUMNS": "200", "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    result = CliRunner().invoke(app, ["batch", "slideshow", csv], env=env)
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "Traceback" not in text, result.output
    assert "has 12 rows, over the batch row cap of 10" in text and "--max-rows N" in text, text

    result = CliRunner().invoke(app, ["batch", "slideshow", csv, "--max-rows", "0"], env=env)
    assert result.exit_code == 2 and "--max-rows" in result.output  # typer's own range check

    many = tmp_path / "many.csv"
    write_slides(many, KEPT_RESULTS + 1)
    out_dir = ["--out-dir", str(tmp_path / "out"), "--max-rows", "10000"]
    result = CliRunner().invoke(app, ["batch", "slideshow", str(many), *out_dir], env=env)
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and f"--out-dir copies the outputs of at most {KEPT_RESULTS:,} rows" in text, text

    monkeypatch.setenv("BOARDFLOW_MAX_BATCH_ROWS", "lots")
    result = CliRunner().invoke(app, ["batch", "slideshow", csv], env=env)
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "BOARDFLOW_MAX_BATCH_ROWS must be a whole number" in text, text
    assert "--max-rows" in CliRunner().invoke(app, ["batch", "--help"], env={"COLUMNS": "200"}).output


def _planning_peak(spec: PipelineSpec, csv: str, registry, count: int) -> int:
    async def plan() -> None:
        got = await prepare_batch(spec, RowSource(csv), {}, registry, open_store())
        assert (got.row_count, got.valid_count) == (count, count)
        assert not got.complete and got.rows == []  # over HELD_ROWS, no valid row is held whole

    tracemalloc.start()
    try:
        asyncio.run(plan())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_planning_memory_does_not_grow_with_the_row_count(data_dir, registry, tmp_path):
    registry.register(Echo("test/echo", provider="local"))
    registry.register(Echo("test/tail", provider="local"))
    spec = PipelineSpec.resolve(echo_spec())
    small = _planning_peak(spec, write_rows(tmp_path / "small.csv", 2_000), registry, 2_000)
    big = _planning_peak(spec, write_rows(tmp_path / "big.csv", 20_000), registry, 20_000)
    # Held whole, the rows took about 8 KiB each. Streamed, what grows is one 32-byte digest per distinct
    # cache key (here every row's two steps are distinct: about 350 bytes a row with the set's own overhead).
    per_row = (big - small) / 18_000
    assert per_row < 1536, (small, big, per_row)


def _result(row: int) -> RowResult:
    return RowResult(row=row, pipeline="p", status="completed", output_urls=f"file:///r{row}.txt")


def test_results_are_written_in_row_order_as_rows_finish_in_row_groups(tmp_path):
    writer = ResultsWriter(tmp_path / "res", "p", keep=3, group_rows=2)
    writer.expect([1, 2, 3, 4, 5])

    def rows_on_disk() -> list[int]:
        return list(pd.read_csv(writer.csv_path)["row"])

    writer.add(_result(2))  # finished before row 1: it waits, so the file stays in row order
    assert rows_on_disk() == []
    writer.add(_result(1))
    assert rows_on_disk() == [1, 2]
    for row in (3, 5, 4):
        writer.add(_result(row))
    assert rows_on_disk() == [1, 2, 3, 4, 5]
    csv_path, parquet_path = writer.close()
    parquet = pq.ParquetFile(parquet_path)
    assert parquet.metadata.num_row_groups == 3  # 2 + 2 + 1
    assert list(pd.read_parquet(parquet_path)["row"]) == [1, 2, 3, 4, 5]
    assert writer.summary()["completed"] == 5 and writer.summary()["rows"] == 5
    assert [r.row for r in writer.kept] == [1, 2, 3]  # what the artifacts show; the files hold every row


class Peeker(Echo):
    """Echo that, as it makes a row, reads the batch's results CSV: which rows are already written."""

    def __init__(self, *args, results: Path, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.results = results
        self.seen: dict[str, list[int]] = {}

    async def generate(self, inputs, context):
        table = pd.read_csv(self.results) if self.results.exists() else pd.DataFrame({"row": []})
        self.seen[inputs.text] = [int(r) for r in table["row"]]
        return await super().generate(inputs, context)


async def test_a_batch_writes_each_row_to_its_results_before_the_next_rows_run(
    prefect_api, data_dir, registry, tmp_path
):
    peek = registry.register(Peeker("test/echo", provider="local", results=tmp_path / "res.csv"))
    registry.register(Echo("test/tail", provider="local"))
    csv = write_rows(tmp_path / "rows.csv", 3, bad={2})
    state, result = await run_batch(spec=echo_spec(), rows=csv, concurrency=1, results_path=str(tmp_path / "res"))
    assert state.is_completed(), result
    # Row 2 is invalid (written as soon as row 1 is); row 3 ran with rows 1 and 2 already on disk.
    assert peek.seen == {"row 1": [], "row 3": [1, 2]}


async def test_a_batch_bigger_than_one_planned_part_runs_part_by_part(prefect_api, data_dir, registry, tmp_path):
    say = registry.register(Echo("test/echo", provider="local"))
    registry.register(Echo("test/tail", provider="local"))
    count = HELD_ROWS + 205
    good = {3, HELD_ROWS - 1, HELD_ROWS + 1, count}  # in both parts; every other row is invalid
    csv = write_rows(tmp_path / "rows.csv", count, bad=set(range(1, count + 1)) - good)
    state, result = await run_batch(spec=echo_spec(), rows=csv, results_path=str(tmp_path / "res"))
    assert state.is_completed(), result
    assert sorted(c.text for c in say.calls) == sorted(f"row {n}" for n in good)
    for table in (pd.read_csv(tmp_path / "res.csv", keep_default_na=False), pd.read_parquet(tmp_path / "res.parquet")):
        assert list(table["row"]) == list(range(1, count + 1))
        assert {n for n, s in zip(table["row"], table["status"], strict=True) if s == "completed"} == good
    assert (result["rows"], result["completed"], result["invalid"]) == (count, 4, count - 4)


async def test_a_parquet_input_streams_typed_cells_and_keeps_to_the_cap(data_dir, registry, tmp_path):
    registry.register(Echo("test/echo", provider="local"))
    registry.register(Echo("test/tail", provider="local"))
    path = tmp_path / "rows.parquet"
    pd.DataFrame({"text": ["one", "two", "three"], "times": [1, None, 3]}).to_parquet(path)
    spec = PipelineSpec.resolve(echo_spec())
    plan = await prepare_batch(spec, RowSource(path), {}, registry, open_store())
    assert (plan.row_count, plan.valid_count) == (3, 3), plan.problems
    assert [(r.params["text"], r.params["times"]) for r in plan.rows] == [("one", 1), ("two", 1), ("three", 3)]
    with pytest.raises(InputError, match="has 3 rows, over the batch row cap of 2"):
        RowSource(path, cap=2).count()
    (tmp_path / "fake.parquet").write_text("text\nnot parquet\n")
    with pytest.raises(InputError, match="fake.parquet is not a readable Parquet file"):
        RowSource(tmp_path / "fake.parquet").count()
