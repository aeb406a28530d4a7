"""Writing a batch's results as its rows finish: CSV rows appended in row order, Parquet row groups, totals."""

from __future__ import annotations

import collections
import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..events import Event, EventSink, RowDone
from .results import COLUMNS, RowResult

KEPT_RESULTS = 5000  # rows a batch keeps whole for its artifacts and the CLI's table (the files have every row)
GROUP_ROWS = 1000  # rows per Parquet row group
_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("pipeline", pa.string()),
        ("status", pa.string()),
        ("output_urls", pa.string()),
        ("cost_usd", pa.float64()),
        ("saved_usd", pa.float64()),
        ("cached", pa.bool_()),
        ("cached_steps", pa.int64()),
        ("steps", pa.int64()),
        ("wall_seconds", pa.float64()),
        ("error", pa.string()),
        ("flow_run_id", pa.string()),
    ]
)
assert _SCHEMA.names == COLUMNS


def result_paths(stem: Path) -> tuple[Path, Path]:
    """`stem`.csv and `stem`.parquet (a .csv or .parquet suffix on `stem` is dropped)."""
    if stem.suffix in (".csv", ".parquet"):
        stem = stem.with_suffix("")
    return stem.parent / f"{stem.name}.csv", stem.parent / f"{stem.name}.parquet"


class ResultsWriter:
    """A batch's results written as its rows finish, so neither the files nor memory wait for the last row.

    Rows go out in row order: a row that finishes before an earlier one waits (`expect` says which rows come).
    Each is appended to the CSV and flushed at once; the Parquet file gets a row group every `group_rows`
    rows. Totals are added up as rows come; only the first `keep` results are kept whole, for the artifacts.
    """

    def __init__(self, stem: Path, pipeline: str, keep: int = KEPT_RESULTS, group_rows: int = GROUP_ROWS) -> None:
        self.pipeline = pipeline
        self.csv_path, self.parquet_path = result_paths(stem)
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        self.keep, self.group_rows = keep, group_rows
        self.kept: list[RowResult] = []
        self.counts = dict.fromkeys(("completed", "cached", "failed", "invalid"), 0)
        self.spent, self.saved, self.duplicates = Decimal(0), Decimal(0), 0
        self.failed: list[RowResult] = []  # the first 20 failed rows, for the error that names them
        self._expected: collections.deque[int] = collections.deque()
        self._waiting: dict[int, RowResult] = {}
        self._group: list[dict[str, Any]] = []
        self._csv = self.csv_path.open("w", encoding="utf-8", newline="")
        self._rows = csv.DictWriter(self._csv, fieldnames=COLUMNS)
        self._rows.writeheader()
        self._csv.flush()
        self._parquet = pq.ParquetWriter(self.parquet_path, _SCHEMA)

    def expect(self, rows: list[int]) -> None:
        """The rows that come next, in order (each comes once, through `add`)."""
        self._expected.extend(rows)

    def add(self, result: RowResult) -> None:
        self._waiting[result.row] = result
        while self._expected and self._expected[0] in self._waiting:
            self._write(self._waiting.pop(self._expected.popleft()))

    def _write(self, result: RowResult) -> None:
        table_row = result.table_row()
        self._rows.writerow(table_row)
        self._csv.flush()
        self._group.append(table_row)
        if len(self._group) >= self.group_rows:
            self._flush_group()
        self.counts[result.status] += 1
        self.spent += result.cost_usd
        self.saved += result.saved_usd
        self.duplicates += sum(rec.possible_duplicates for rec in result.records)
        if result.status == "failed" and len(self.failed) < 20:
            self.failed.append(result)
        if len(self.kept) < self.keep:
            self.kept.append(result)

    def _flush_group(self) -> None:
        if self._group:
            self._parquet.write_table(pa.Table.from_pylist(self._group, schema=_SCHEMA))
            self._group = []

    def close(self, finished: bool = True) -> tuple[Path, Path]:
        """Write what is left and close both files. In a `finished` batch, a row still awaited is a bug: named."""
        missing = list(self._expected)[:5]
        self._flush_group()
        self._parquet.close()
        self._csv.close()
        if finished and (missing or self._waiting):
            raise RuntimeError(f"batch results: rows {missing} never came, {sorted(self._waiting)[:5]} came unasked")
        return self.csv_path, self.parquet_path

    def summary(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "rows": sum(self.counts.values()),
            **self.counts,
            "spent_usd": str(self.spent),
            "saved_usd": str(self.saved),
            "possible_duplicate_charges": self.duplicates,
            "results_csv": str(self.csv_path),
            "results_parquet": str(self.parquet_path),
        }


class RowsWritten:
    """The batch's event sink for its runner: each finished row goes to the results files at once, and a row's
    progress counts the rows of the batch's earlier parts too (the runner runs one part of a big batch at a time)."""

    def __init__(self, writer: ResultsWriter, sink: EventSink, total: int) -> None:
        self.writer, self.sink, self.total = writer, sink, total
        self.done = self.failed = 0  # in the parts before the one running
        self._last = (0, 0)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RowDone):
            self.writer.add(event.result)
            self._last = (event.done, event.failed)
            event = RowDone(event.result, self.done + event.done, self.failed + event.failed, self.total)
        self.sink(event)

    def part_done(self) -> None:
        self.done, self.failed = self.done + self._last[0], self.failed + self._last[1]
        self._last = (0, 0)
