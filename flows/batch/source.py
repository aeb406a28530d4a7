"""Batch input read as a stream: a CSV, a Parquet file or a list of rows, and the cap on how many rows it may have."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from generators.errors import InputError

MAX_ROWS_ENV = "BOARDFLOW_MAX_BATCH_ROWS"
DEFAULT_MAX_ROWS = 100_000


def max_rows(given: int | None = None) -> int:
    """The most rows one batch takes: `given` (`--max-rows`), else $BOARDFLOW_MAX_BATCH_ROWS, else 100,000."""
    where, raw = ("--max-rows", given) if given is not None else (MAX_ROWS_ENV, os.environ.get(MAX_ROWS_ENV))
    if raw is None or raw == "":
        return DEFAULT_MAX_ROWS
    try:
        cap = int(raw)
    except ValueError:
        cap = 0
    if cap < 1:
        raise InputError(f"{where} must be a whole number of rows, at least 1; got {raw!r}.", hint=_CAP_HINT)
    return cap


class RowSource:
    """A batch's input rows, read as a stream each time they are iterated, so a big file is never all in memory.

    A list is taken as given; a CSV is read with every cell kept as written ("007" stays "007", an empty cell
    stays "" = not given). Refused, with the line: a missing or empty file, text that is not UTF-8, a row with
    more cells than the header; `count()` also refuses more rows than the cap (`max_rows()`). A `.parquet`
    file is read a row group at a time, its cells typed as stored (a null is not given).
    """

    def __init__(self, source: str | Path | list[dict[str, Any]], cap: int | None = None) -> None:
        self.source = source
        self.cap = max_rows() if cap is None else cap

    @property
    def where(self) -> str:
        return str(self.source) if isinstance(self.source, str | Path) else "The list of rows"

    @property
    def parquet(self) -> bool:
        return isinstance(self.source, str | Path) and Path(self.source).suffix.lower() == ".parquet"

    def columns(self) -> set[str]:
        if isinstance(self.source, list):
            return {c for row in self.source for c in row}
        if self.parquet:
            return set(self._parquet_file().schema_arrow.names)
        with self._open() as fh:
            return set(self._header(csv.reader(fh))) - {""}

    def count(self) -> int:
        """How many rows there are; over the cap, an error naming the cap, the count and how to raise it."""
        if isinstance(self.source, list):
            count = len(self.source)
        else:
            count = self._parquet_file().metadata.num_rows if self.parquet else sum(1 for _ in self._cells())
        if count > self.cap:
            raise InputError(
                f"{self.where} has {count:,} rows, over the batch row cap of {self.cap:,}; nothing was run.",
                hint=_CAP_HINT,
            )
        return count

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(row number, row), the number 1-based and counting data rows only (not the header, not blank lines)."""
        if isinstance(self.source, list):
            yield from ((n, dict(row)) for n, row in enumerate(self.source, start=1))
            return
        if self.parquet:
            batches = self._parquet_file().iter_batches(batch_size=1000)
            yield from enumerate((row for batch in batches for row in batch.to_pylist()), start=1)
            return
        for number, (header, cells) in enumerate(self._cells(), start=1):
            yield number, dict(zip(header, [*cells, *[""] * (len(header) - len(cells))], strict=True))

    def _path(self) -> Path:
        path = Path(self.source)  # type: ignore[arg-type]
        if not path.is_file():
            raise InputError(
                f"No batch {'Parquet file' if self.parquet else 'CSV'} at {path}.",
                hint="Pass the path of a CSV or .parquet file (see deployments/batches/).",
            )
        return path

    def _open(self) -> IO[str]:
        return self._path().open(encoding="utf-8-sig", newline="")

    def _parquet_file(self) -> pq.ParquetFile:
        path = self._path()
        try:
            return pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path} is not a readable Parquet file ({exc}).") from None

    def _header(self, reader: Any) -> list[str]:
        try:
            header = [c.strip() for c in next(reader, [])]
        except UnicodeDecodeError as exc:
            raise self._not_utf8(exc, 0) from None
        if not any(header):
            raise InputError(f"{self.source} is empty: it has no header row.", hint=_HEADER_HINT)
        return header

    def _cells(self) -> Iterator[tuple[list[str], list[str]]]:
        """(header, cells) of each data row, its cells checked against the header's width."""
        number = 0
        with self._open() as fh:
            reader = csv.reader(fh)
            header = self._header(reader)
            try:
                for cells in reader:
                    if not any(c.strip() for c in cells):
                        continue  # a blank line is no row
                    if len(cells) > len(header):
                        raise InputError(
                            f"{self.source}, line {reader.line_num}: {len(cells)} cells, but the header names "
                            f"{len(header)}.",
                            hint="Quote cells that contain commas, or add the missing column to the header.",
                        )
                    number += 1
                    yield header, cells
            except UnicodeDecodeError as exc:
                raise self._not_utf8(exc, number) from None
            except csv.Error as exc:
                raise InputError(f"{self.source}: not a readable CSV ({exc}).") from None

    def _not_utf8(self, exc: UnicodeDecodeError, rows_read: int) -> InputError:
        return InputError(
            f"{self.source} is not UTF-8 text (a byte that is not UTF-8 near data row {rows_read + 1}: {exc.reason}).",
            hint="Save the CSV as UTF-8 (spreadsheet apps: 'CSV UTF-8').",
        )


def read_rows(source: str | Path | list[dict[str, Any]], cap: int | None = None) -> list[dict[str, Any]]:
    """Every row as a dict, once the cap is checked: for a script over a small CSV (a batch streams `RowSource`)."""
    rows = RowSource(source, cap)
    rows.count()
    return [raw for _, raw in rows]


_HEADER_HINT = "The first line names the pipeline's parameters, one column each; each line after it is a row."
_CAP_HINT = (
    f"Raise the cap with --max-rows N (or {MAX_ROWS_ENV}=N; the default is {DEFAULT_MAX_ROWS:,}), "
    "or split the batch into several files."
)


def require_rows(count: int, rows: RowSource) -> None:
    if not count:
        raise InputError(f"{rows.where} has no data rows: nothing to run.", hint=_HEADER_HINT)
