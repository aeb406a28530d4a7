"""Batch results: one row per input row → CSV and Parquet files, Prefect table/progress/preview artifacts."""

from __future__ import annotations

import asyncio
import csv
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generators.artifacts import output_artifacts
from generators.errors import InputError
from generators.storage import ArtifactStore

from ..reporting import costs
from ..reporting.costs import CostRecord, usd

if TYPE_CHECKING:
    from .rows import BatchRow

COLUMNS = [
    "row",
    "pipeline",
    "status",  # completed | cached (nothing ran) | failed | invalid (skipped before running)
    "output_urls",  # every output artifact's storage URL, space-separated, in the spec's output order
    "cost_usd",
    "saved_usd",
    "cached",  # every step came from the cache
    "cached_steps",
    "steps",
    "wall_seconds",
    "error",
    "flow_run_id",  # the row's own subflow run ("" when nothing ran)
]
RERUN_STATUSES = {"failed", "invalid"}


@dataclass
class RowResult:
    row: int
    pipeline: str
    status: str
    output_urls: str = ""
    cost_usd: Decimal = Decimal(0)
    saved_usd: Decimal = Decimal(0)
    cached: bool = False
    cached_steps: int = 0
    steps: int = 0
    wall_seconds: float = 0.0
    error: str = ""
    flow_run_id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    records: list[CostRecord] = field(default_factory=list)

    def table_row(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "pipeline": self.pipeline,
            "status": self.status,
            "output_urls": self.output_urls,
            "cost_usd": float(self.cost_usd),
            "saved_usd": float(self.saved_usd),
            "cached": self.cached,
            "cached_steps": self.cached_steps,
            "steps": self.steps,
            "wall_seconds": round(self.wall_seconds, 2),
            "error": self.error,
            "flow_run_id": self.flow_run_id,
        }


def output_urls(outputs: dict[str, Any]) -> str:
    return " ".join(artifact.storage_url for _, _, artifact in output_artifacts(outputs))


def from_records(
    pipeline: str,
    row: int,
    records: list[CostRecord],
    outputs: dict[str, Any],
    error: str | None,
    wall: float,
    run_id: str,
) -> RowResult:
    cached = sum(r.cached for r in records)
    return RowResult(
        row=row,
        pipeline=pipeline,
        status="failed" if error else "completed",
        output_urls=output_urls(outputs),
        cost_usd=sum((r.actual_usd for r in records), Decimal(0)),
        saved_usd=sum((r.saved_usd for r in records), Decimal(0)),
        cached=bool(records) and cached == len(records) and not error,
        cached_steps=cached,
        steps=len(records),
        wall_seconds=wall,
        error=error or "",
        flow_run_id=run_id,
        outputs=outputs,
        records=list(records),
    )


def from_cache(pipeline: str, row: BatchRow, outputs: dict[str, Any]) -> RowResult:
    """A row whose every step the plan found in the cache: its outputs, read back, at $0."""
    assert row.plan is not None
    records = [
        CostRecord(
            pipeline=pipeline,
            step=call.label,
            generator=call.generator.name,
            provider=call.generator.provider,
            status="cached",
            estimated_usd=call.estimate,
            actual_usd=Decimal(0),
            actual_is_estimate=False,
            cached=True,
            saved_usd=call.lookup.result.cost_usd if call.lookup.result else Decimal(0),
        )
        for planned in row.plan.steps
        for call in planned.calls
    ]
    return RowResult(
        row=row.row,
        pipeline=pipeline,
        status="cached",
        output_urls=output_urls(outputs),
        saved_usd=sum((r.saved_usd for r in records), Decimal(0)),
        cached=True,
        cached_steps=len(records),
        steps=len(records),
        outputs=outputs,
        records=records,
    )


def invalid(row: BatchRow, pipeline: str) -> RowResult:
    return RowResult(row=row.row, pipeline=pipeline, status="invalid", error="; ".join(map(str, row.problems)))


def crashed(pipeline: str, row: int, error: str, wall: float, run_id: str) -> RowResult:
    return RowResult(row=row, pipeline=pipeline, status="failed", error=error, wall_seconds=wall, flow_run_id=run_id)


def failed_rows(results_csv: str, pipeline: str, row_count: int) -> set[int]:
    """Row numbers whose status in an earlier results file is failed or invalid (the file read as a stream)."""
    path = Path(results_csv)
    if not path.is_file():
        raise InputError(f"No results file at {path}.", hint="Pass the .csv a previous `boardflow batch` wrote.")
    wanted: set[int] = set()
    with path.open(encoding="utf-8", newline="") as fh:
        table = csv.DictReader(fh)
        if not {"row", "status"} <= set(table.fieldnames or []):
            raise InputError(f"{path} is not a batch results file: it has no 'row' and 'status' columns.")
        for line in table:
            if line.get("pipeline") not in (pipeline, "", None):
                raise InputError(
                    f"{path} holds results of pipeline {line['pipeline']!r}, not {pipeline!r}.",
                    hint="Pass the results file of this pipeline's batch.",
                )
            if line["status"] in RERUN_STATUSES:
                try:
                    wanted.add(int(line["row"]))
                except ValueError:
                    raise InputError(f"{path}, line {table.line_num}: row {line['row']!r} is not a number.") from None
    beyond = sorted(r for r in wanted if r > row_count)
    if beyond:
        raise InputError(
            f"{path} names row {beyond[0]}, but the batch input has only {row_count} row(s).",
            hint="Pass the same CSV the results came from.",
        )
    return wanted


def summary(pipeline: str, results: list[RowResult], csv_path: str, parquet_path: str) -> dict[str, Any]:
    counts = {s: sum(r.status == s for r in results) for s in ("completed", "cached", "failed", "invalid")}
    return {
        "pipeline": pipeline,
        "rows": len(results),
        **counts,
        "spent_usd": str(sum((r.cost_usd for r in results), Decimal(0))),
        "saved_usd": str(sum((r.saved_usd for r in results), Decimal(0))),
        "possible_duplicate_charges": sum(rec.possible_duplicates for r in results for rec in r.records),
        "results_csv": csv_path,
        "results_parquet": parquet_path,
    }


def summary_line(summary: dict[str, Any]) -> str:
    """The batch's totals in one line: the results table's description (see costs.summary_line for why one line)."""
    return (
        f"**Batch of `{summary['pipeline']}`: {summary['rows']} row(s)** — "
        f"**{summary['completed']} completed · {summary['cached']} from cache · {summary['failed']} failed · "
        f"{summary['invalid']} invalid**, spent **{usd(Decimal(summary['spent_usd']))}**, "
        f"saved {usd(Decimal(summary['saved_usd']))} by cache. "
        + (
            f"**{duplicates} possible duplicate charge(s)**: paid submissions sent again after their answer was "
            "lost, at a provider that offers no way to find the job; check its billing. "
            if (duplicates := summary.get("possible_duplicate_charges"))
            else ""
        )
        + f"Results: `{summary['results_csv']}` and `{summary['results_parquet']}`"
    )


def cost_rows(results: list[RowResult]) -> list[dict[str, Any]]:
    """Every row's steps as one cost table, each led by its row number (the rows' own tables have no row)."""
    return costs.same_columns([{"row": r.row, **costs.table_row(rec)} for r in results for rec in r.records])


async def publish(
    pipeline: str, results: list[RowResult], summary: dict[str, Any], store: ArtifactStore, previews: int
) -> None:
    """On the batch's own run: the results table, the cost table and summary of every row, output previews."""
    from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

    await acreate_table_artifact(
        key=costs.artifact_key(pipeline, "batch-results"),
        table=[r.table_row() for r in results],
        description=summary_line(summary),
    )
    # Each row that ran also has its own cost table on its subflow run; `read_history` counts a step once.
    records = [rec for r in results for rec in r.records]
    await costs.publish_tally(pipeline, "batch-", cost_rows(results), records, f"the `{pipeline}` batch")
    if previews > 0:
        description, body = await previews_markdown(pipeline, results, store, previews)
        if description:
            await acreate_markdown_artifact(
                key=costs.artifact_key(pipeline, "batch-previews"), markdown=body, description=description
            )


async def previews_markdown(
    pipeline: str, results: list[RowResult], store: ArtifactStore, limit: int
) -> tuple[str, str]:
    """(description, body) of the previews artifact: see reporting.previews.card_markdown for why they differ."""
    from generators.context import GeneratorContext

    from ..reporting.media import MediaLinks
    from ..reporting.previews import Preview, card_markdown, make_preview

    shown = [r for r in results if r.outputs][:limit]
    if not shown:
        return "", ""
    previews: list[tuple[str, Preview]] = []
    links = await MediaLinks.announced()
    async with GeneratorContext(store) as gctx:
        for r in shown:
            for name, _, art in output_artifacts(r.outputs):
                label = f"row {r.row}" if len(r.outputs) == 1 else f"row {r.row} {name}"
                previews.append((f"{r.row} · {name}", await make_preview(label, art, store, gctx, links=links)))
    more = sum(1 for r in results if r.outputs) - len(shown)
    tail = f"\n\n_{more} more row(s) in the results table._" if more > 0 else ""
    description, body = card_markdown(f"Outputs of the `{pipeline}` batch", previews, "row · output")
    return description + tail, body + tail


class Progress:
    """Rows done / failed / remaining as a Prefect progress artifact on the batch run, updated per row."""

    def __init__(self, pipeline: str, total: int) -> None:
        self.pipeline = pipeline
        self.total = total
        self.done = 0
        self.failed = 0
        self._id = None
        self._lock = asyncio.Lock()

    def text(self) -> str:
        remaining = self.total - self.done - self.failed
        return f"{self.pipeline} batch: {self.done} done · {self.failed} failed · {remaining} remaining"

    def percent(self) -> float:
        return round(100.0 * (self.done + self.failed) / self.total, 1) if self.total else 100.0

    async def start(self) -> None:
        from prefect.artifacts import acreate_progress_artifact

        self._id = await acreate_progress_artifact(
            progress=self.percent(), key=costs.artifact_key(self.pipeline, "batch-progress"), description=self.text()
        )

    async def row_done(self, result: RowResult) -> None:
        from prefect.artifacts import aupdate_progress_artifact

        async with self._lock:
            if result.status == "failed":
                self.failed += 1
            else:
                self.done += 1
            if self._id is not None:
                await aupdate_progress_artifact(self._id, progress=self.percent(), description=self.text())

    async def finish(self) -> None:
        from prefect.artifacts import aupdate_progress_artifact

        async with self._lock:
            if self._id is not None:
                await aupdate_progress_artifact(self._id, progress=self.percent(), description=self.text())
