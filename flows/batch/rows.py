"""Batch input: rows from a CSV or a list → each row's parameters checked and planned → one plan for the batch."""

from __future__ import annotations

import difflib
import math
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from generators.errors import InputError, InputValidationError
from generators.registry import Registry
from generators.storage import ArtifactStore

from ..pipeline.plan import Plan, make_plan
from ..pipeline.safe_yaml import CELL_MAX_BYTES, load_yaml
from ..pipeline.spec import ParamSpec, PipelineSpec, find_refs
from ..pipeline.validate import validate
from ..reporting.costs import usd
from .source import RowSource, read_rows  # noqa: F401 (read_rows: docs/scale-out.md imports it from here)

OVERRIDES_COLUMN = "overrides"  # optional column: a YAML/JSON mapping of parameters for that row only
_MISSING = object()


@dataclass(frozen=True)
class RowProblem:
    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column or '(none)'}: {self.reason}"


class BatchValidationError(InputError):
    def __init__(self, pipeline: str, problems: list[RowProblem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"Batch of {pipeline!r}: {len(problems)} problem(s) in the rows; nothing was run:\n{lines}",
            hint="Fix those cells and run again, or leave out --strict to run the good rows and skip the bad ones.",
        )


@dataclass
class BatchRow:
    row: int  # 1-based number of the data row (the header is not counted)
    params: dict[str, Any] = field(default_factory=dict)  # checked values, defaults filled in
    problems: list[RowProblem] = field(default_factory=list)
    plan: Plan | None = None

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def fully_cached(self) -> bool:
        """Every step of this row is in the cache with its artifacts: running it would only read them back."""
        return (
            self.plan is not None
            and all(all(s.cached) and s.count for s in self.plan.steps)
            and all(self.plan.results.get(s.step) is not None for s in self.plan.steps)
        )


def check_columns(spec: PipelineSpec, columns: set[str]) -> None:
    """A column that is no parameter is a typo in every row: refuse the batch and name it."""
    unknown = sorted(columns - set(spec.params) - {OVERRIDES_COLUMN})
    if unknown:
        known = [*spec.params, OVERRIDES_COLUMN]
        close = [f"{m[0]!r} for {u!r}" for u in unknown if (m := difflib.get_close_matches(u, known, n=1))]
        raise InputError(
            f"Column(s) {', '.join(map(repr, unknown))} are not parameters of pipeline {spec.name!r}"
            + (f" (did you mean {', '.join(close)}?)" if close else "."),
            hint=f"Use the parameter names as column headers: {', '.join(spec.params) or 'none'} "
            f"(and optionally {OVERRIDES_COLUMN!r}).",
        )


def check_overrides(spec: PipelineSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    """`--set key=value` values that apply to every row, checked once."""
    unknown = sorted(set(overrides) - set(spec.params))
    if unknown:
        raise InputError(
            f"--set names unknown parameter(s) {', '.join(unknown)} of pipeline {spec.name!r}.",
            hint=f"Known parameters: {', '.join(spec.params) or 'none'}.",
        )
    checked = {}
    for name, value in overrides.items():
        try:
            checked[name] = cell_value(spec.params[name], name, value)
        except (InputError, ValueError) as exc:
            raise InputError(f"--set {name}: {_reason(exc)}") from exc
    return {k: v for k, v in checked.items() if v is not _MISSING}


def cell_value(param: ParamSpec, name: str, cell: Any) -> Any:
    """A cell as a typed parameter value; `_MISSING` for an empty cell. JSON/YAML text for list/object."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)) or (isinstance(cell, str) and not cell.strip()):
        return _MISSING
    if param.type == "integer" and isinstance(cell, float) and cell.is_integer():
        cell = int(cell)  # a typed file's integer column with a null in it is stored as floats (pandas does so)
    if isinstance(cell, str) and param.type in ("list", "object"):
        cell = load_yaml(cell, f"the {param.type} in this cell", max_bytes=CELL_MAX_BYTES)
    return param.check(name, cell)


def _reason(exc: Exception) -> str:
    if isinstance(exc, InputError):
        return exc.message
    return str(exc)


def row_params(spec: PipelineSpec, number: int, raw: dict[str, Any], overrides: dict[str, Any]) -> BatchRow:
    """One row's parameters, checked cell by cell: precedence is cells, then its overrides cell, then --set."""
    row = BatchRow(number)
    given: dict[str, Any] = {}
    for column, cell in raw.items():
        if column == OVERRIDES_COLUMN:
            continue
        try:
            value = cell_value(spec.params[column], column, cell)
        except (InputError, ValueError) as exc:
            row.problems.append(RowProblem(number, column, _reason(exc)))
            continue
        if value is not _MISSING:
            given[column] = value
    given.update(_row_overrides(spec, row, raw.get(OVERRIDES_COLUMN)))
    given.update(overrides)
    for name, param in spec.params.items():
        already = any(p.column == name for p in row.problems)  # a bad cell was reported already
        if param.required and param.default is None and name not in given and not already:
            row.problems.append(RowProblem(number, name, "is required by the pipeline and is empty."))
    if row.valid:
        try:
            row.params = spec.resolve_params(given)
        except InputError as exc:
            row.problems.append(RowProblem(number, "", exc.message))
    return row


def _row_overrides(spec: PipelineSpec, row: BatchRow, cell: Any) -> dict[str, Any]:
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return {}
    try:
        data = load_yaml(cell, "this cell", max_bytes=CELL_MAX_BYTES) if isinstance(cell, str) else cell
    except InputError as exc:
        row.problems.append(RowProblem(row.row, OVERRIDES_COLUMN, exc.message))
        return {}
    if not isinstance(data, dict):
        row.problems.append(RowProblem(row.row, OVERRIDES_COLUMN, 'must be a mapping, e.g. {"mood": "epic"}.'))
        return {}
    found = {}
    for name, value in data.items():
        if name not in spec.params:
            row.problems.append(RowProblem(row.row, OVERRIDES_COLUMN, f"{name!r} is not a parameter of the pipeline."))
            continue
        try:
            found[name] = spec.params[name].check(name, value)
        except (InputError, ValueError) as exc:
            row.problems.append(RowProblem(row.row, f"{OVERRIDES_COLUMN}.{name}", _reason(exc)))
    return found


async def plan_row(
    spec: PipelineSpec, order: list[str], row: BatchRow, registry: Registry, store: ArtifactStore, refresh: bool
) -> None:
    """Plan one valid row; the generators' own input checks become problems naming the column they came from."""
    try:
        row.plan = await make_plan(spec, order, row.params, registry, store, refresh)
    except InputValidationError as exc:
        for input_field, message in exc.problems:
            column, where = _source_column(spec, exc.generator, input_field.split(".")[0])
            row.problems.append(RowProblem(row.row, column, f"{message} (input {where} of {exc.generator})"))
    except InputError as exc:
        row.problems.append(RowProblem(row.row, "", exc.message))


def _source_column(spec: PipelineSpec, generator: str, input_field: str) -> tuple[str, str]:
    """Which parameter(s) feed `input_field` of the steps running `generator`, and where that input is.

    A check across fields (empty `input_field`) points at every parameter the step's inputs use.
    """
    columns: list[str] = []
    where = input_field
    for name, step in spec.steps.items():
        if generator not in (step.generator, *step.fallbacks):
            continue
        if input_field and input_field in step.inputs:
            where, value = f"{name}.{input_field}", step.inputs[input_field]
        elif not input_field:
            where, value = f"{name} (its inputs together)", step.inputs
        else:
            continue
        refs = find_refs(value)
        columns += [str(r.path[0]) for r in refs if r.root == "params" and str(r.path[0]) not in columns]
    return ", ".join(columns), where


@dataclass
class StepTotals:
    step: str
    generator: str
    runs: int = 0
    cached: int = 0  # already in the cache
    repeats: int = 0  # same inputs as an earlier row of this batch: made once, then a cache hit
    estimate_usd: Decimal = Decimal(0)
    saved_usd: Decimal = Decimal(0)
    approximate: bool = False


HELD_ROWS = 1000  # rows a plan keeps whole (with their step plans); a bigger batch is planned again as it runs


@dataclass
class BatchPlan:
    pipeline: str
    rows: list[BatchRow]  # every row, with its plan, up to HELD_ROWS of them; beyond that only the invalid ones
    steps: dict[str, StepTotals]
    max_cost_usd: Decimal | None
    row_count: int = 0  # rows checked, valid or not
    valid_count: int = 0

    @property
    def complete(self) -> bool:
        """`rows` holds every row of the batch: it can run from them without planning its rows again."""
        return len(self.rows) == self.row_count

    @property
    def valid_rows(self) -> list[BatchRow]:
        return [r for r in self.rows if r.valid]

    @property
    def problems(self) -> list[RowProblem]:
        return [p for r in self.rows for p in r.problems]

    @property
    def total_usd(self) -> Decimal:
        return sum((s.estimate_usd for s in self.steps.values()), Decimal(0))

    @property
    def saved_usd(self) -> Decimal:
        return sum((s.saved_usd for s in self.steps.values()), Decimal(0))

    @property
    def over_budget(self) -> bool:
        return self.max_cost_usd is not None and self.total_usd > self.max_cost_usd

    def summary(self) -> str:
        cap = f" (cap {usd(self.max_cost_usd)})" if self.max_cost_usd is not None else ""
        runs = sum(s.runs for s in self.steps.values())
        hits = sum(s.cached + s.repeats for s in self.steps.values())
        return (
            f"{self.valid_count} row(s) to run, {self.row_count - self.valid_count} invalid; "
            f"{runs} step run(s), {hits} expected from cache; estimated {usd(self.total_usd)}{cap}"
        )


class BatchPlanner:
    """Adds up a batch's plan one row at a time, so a big batch's rows need not all be held at once.

    What it keeps grows only by the invalid rows (their problems) and 32 bytes per distinct cache key (to
    count a step an earlier row will make as a repeat, made once and then a cache hit).
    """

    def __init__(self, pipeline: str, max_cost_usd: Decimal | None, held: int = HELD_ROWS) -> None:
        self.plan = BatchPlan(pipeline, [], {}, max_cost_usd)
        self.held = held
        self._seen: set[bytes] = set()

    def add(self, row: BatchRow) -> None:
        plan = self.plan
        plan.row_count += 1
        if not row.valid:
            row.params = {}
            plan.rows.append(row)
            return
        plan.valid_count += 1
        if len(plan.rows) == plan.row_count - 1:  # every row so far is held
            if len(plan.rows) < self.held:
                plan.rows.append(row)
            else:  # one too many: from now on only the invalid rows are kept
                plan.rows = [r for r in plan.rows if not r.valid]
        if row.plan is None:
            return
        for planned in row.plan.steps:
            totals = plan.steps.setdefault(planned.step, StepTotals(planned.step, planned.generator))
            totals.approximate |= planned.uncertain
            for estimate, hit, key in zip(planned.estimates, planned.cached, planned.keys, strict=True):
                totals.runs += 1
                digest = bytes.fromhex(key) if key is not None else None
                if hit:
                    totals.cached += 1
                    totals.saved_usd += estimate
                elif digest in self._seen:
                    totals.repeats += 1
                    totals.saved_usd += estimate
                else:
                    totals.estimate_usd += estimate
                    if digest is not None:
                        self._seen.add(digest)


async def checked_rows(
    spec: PipelineSpec,
    order: list[str],
    rows: Iterable[tuple[int, dict[str, Any]]],
    overrides: dict[str, Any],
    registry: Registry,
    store: ArtifactStore,
    refresh: bool = False,
) -> AsyncIterator[BatchRow]:
    """Each row checked and, when valid, planned: one at a time, as the rows are read."""
    for number, raw in rows:
        row = row_params(spec, number, raw, overrides)
        if row.valid:
            await plan_row(spec, order, row, registry, store, refresh)
        yield row


async def planned_parts(
    spec: PipelineSpec,
    plan: BatchPlan,
    rows: RowSource,
    overrides: dict[str, Any],
    registry: Registry,
    store: ArtifactStore,
    refresh: bool,
    wanted: set[int] | None,
) -> AsyncIterator[BatchPlan]:
    """The batch in parts of at most HELD_ROWS rows, each with its rows planned: a plan that holds every row is
    one part; a bigger batch's rows are read and planned again, a part at a time, just before they run."""
    if plan.complete:
        yield plan
        return
    order = validate(spec, registry)
    fixed = check_overrides(spec, overrides)
    part: list[BatchRow] = []
    async for row in checked_rows(spec, order, only_rows(rows, wanted), fixed, registry, store, refresh):
        part.append(row)
        if len(part) == HELD_ROWS:
            yield BatchPlan(plan.pipeline, part, {}, plan.max_cost_usd, len(part), sum(r.valid for r in part))
            part = []
    if part:
        yield BatchPlan(plan.pipeline, part, {}, plan.max_cost_usd, len(part), sum(r.valid for r in part))


def only_rows(rows: RowSource, wanted: set[int] | None) -> Iterator[tuple[int, dict[str, Any]]]:
    return (numbered for numbered in rows if wanted is None or numbered[0] in wanted)
