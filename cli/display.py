"""What the terminal shows: live step and row progress (from the run's events), plan and cost tables, trees."""

from __future__ import annotations

import json
import time
from typing import Any

from rich import box
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.tree import Tree

from flows.batch.rows import BatchPlan
from flows.events import (
    BatchFinished,
    BatchPlanned,
    Event,
    RowDone,
    RunFinished,
    RunStarted,
    StepDone,
    StepFailed,
    StepProgress,
    StepSkipped,
    StepStarted,
)
from flows.pipeline.plan import Plan
from flows.pipeline.spec import PipelineSpec
from flows.reporting.costs import CostRecord, totals, usd
from flows.reporting.lineage import LineageNode


class RunProgress:
    """`with RunProgress(console) as p, subscribe(p):` shows live step states; p.records holds the cost records.

    On a terminal: a live table, each running step with its percentage and time. Elsewhere (a log, CI): one
    plain line per event, as it happens.
    """

    def __init__(self, console: Console, planned: int = 0) -> None:
        self.console = console
        self.states: dict[str, tuple[str, str]] = {}  # label -> (state text, generator)
        self.started: dict[str, float] = {}
        self.records: list[CostRecord] = []
        self.records_so_far: list[CostRecord] = []
        self.flow_run_id: str | None = None
        self.planned = planned
        self.running = False  # the flow run has started (Prefect is up)
        self.live = console.is_terminal
        self._live = Live(self._render(), console=console, refresh_per_second=4, transient=False) if self.live else None
        self._began = time.monotonic()

    def __enter__(self) -> RunProgress:
        if self._live is not None:
            self._live.__enter__()
        else:
            self.console.print(f"starting Prefect… ({self.planned} step runs planned)", highlight=False)
            self.console.file.flush()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(*exc)

    def __call__(self, event: Event) -> None:
        line = self._apply(event)
        if self._live is not None:
            self._live.update(self._render())
        elif line:
            self.console.print(f"{time.monotonic() - self._began:6.1f}s  {line}", markup=False, highlight=False)
            self.console.file.flush()  # a pipe is block-buffered: a log or CI must see each line as it happens

    def _apply(self, event: Event) -> str | None:
        """Update the state from one event; the plain line that says what happened (None: nothing to say)."""
        match event:
            case RunStarted(flow_run_id=run_id, planned_steps=planned):
                self.flow_run_id, self.planned, self.running = run_id, planned, True
                return f"run started: {planned} step runs"
            case RunFinished(records=records):
                self.records = list(records)
                return None
            case StepStarted(label=label, generator=generator):
                self.started[label] = time.monotonic()
                self.states[label] = ("[cyan]running[/]", generator)
                return f"{label}: started ({generator})"
            case StepProgress(label=label, fraction=fraction):
                elapsed = time.monotonic() - self.started.get(label, time.monotonic())
                gen = self.states.get(label, ("", ""))[1]
                self.states[label] = (f"[cyan]running[/] {fraction:4.0%} {elapsed:.0f}s", gen)
                return None
            case StepDone(label=label, record=record):
                self.records_so_far.append(record)
                status = "cached" if record.cached else "done"
                if record.remade:  # a cached answer whose bytes could not be served: say why it ran
                    status = f"done ({record.remade})"
                self.states[label] = (
                    f"[green]{status}[/] {record.wall_seconds:.1f}s {usd(record.actual_usd)}",
                    record.generator,
                )
                return f"{label}: {status} in {record.wall_seconds:.1f}s, {usd(record.actual_usd)}"
            case StepFailed(label=label, error=error):
                self.states[label] = (f"[red]failed[/] {escape(error[:80])}", self.states.get(label, ("", ""))[1])
                return f"{label}: failed: {error[:200]}"
            case StepSkipped(label=label):
                self.states[label] = ("[yellow]skipped[/] (upstream failed)", "")
                return f"{label}: skipped (an upstream step failed)"
        return None

    def _render(self) -> Table:
        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("step", no_wrap=True)
        table.add_column("generator", no_wrap=True)
        table.add_column("state")
        for label, (state, gen) in self.states.items():
            table.add_row(label, gen, state)
        done = sum(1 for s, _ in self.states.values() if "done" in s or "cached" in s)
        total = max(self.planned, len(self.states))
        table.caption = f"{done}/{total} step runs finished" if self.running else f"starting Prefect… ({total} planned)"
        return table


class BatchDisplay:
    """The plan, the rows that were skipped, and a live bar of rows done / failed / remaining."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.results: list[Any] = []
        self.summary: dict[str, Any] = {}
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._task: Any = None

    def __enter__(self) -> BatchDisplay:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def __call__(self, event: Event) -> None:
        match event:
            case BatchPlanned(plan=plan):
                self.console.print(batch_plan_table(plan))
                if plan.problems:
                    self.console.print(problems_table(plan))
                total = plan.valid_count
                self._task = self._progress.add_task("rows", total=total, counts=_counts(0, 0, total))
            case RowDone(done=done, failed=failed, total=total) if self._task is not None:
                self._progress.update(self._task, completed=done + failed, counts=_counts(done, failed, total))
            case BatchFinished(summary=summary, results=results):
                self.results, self.summary = results, summary

    def print_results(self, limit: int = 30) -> None:
        if not self.summary:
            return
        if not self.summary.get("rows"):
            self.console.print(f"No rows to run: every row of {self.summary.get('only_failed')} succeeded.")
            return
        shown = self.results if len(self.results) <= limit else [r for r in self.results if r.status != "completed"]
        table = Table(title=f"Batch results ({self.summary['rows']} rows)")
        for col in ("row", "status", "cost", "cached", "output / error"):
            table.add_column(col, justify="right" if col in ("row", "cost") else "left")
        for r in shown[:limit]:
            colour = {"completed": "green", "cached": "green", "failed": "red", "invalid": "yellow"}[r.status]
            detail = r.output_urls if r.status in ("completed", "cached") else r.error[:160]
            table.add_row(
                str(r.row), f"[{colour}]{r.status}[/]", usd(r.cost_usd), f"{r.cached_steps}/{r.steps}", escape(detail)
            )
        self.console.print(table)
        s = self.summary
        self.console.print(
            f"[bold]{s['completed']} completed · {s['cached']} from cache · {s['failed']} failed · "
            f"{s['invalid']} invalid[/] — spent {usd(s['spent_usd'])}, saved {usd(s['saved_usd'])}"
        )
        if duplicates := s.get("possible_duplicate_charges"):
            self.console.print(
                f"[yellow]{duplicates} possible duplicate charge(s):[/] a paid submission's answer was lost and the "
                "provider offers no way to find the job, so it was submitted again; check the provider's billing."
            )
        self.console.print(f"Results: {s['results_csv']}  {s['results_parquet']}")


def _counts(done: int, failed: int, total: int) -> str:
    return f"[green]{done} done[/] · [red]{failed} failed[/] · {total - done - failed} remaining"


def params_table(spec: PipelineSpec) -> Table:
    """The parameters a pipeline takes (what `-p NAME=VALUE` and CSV columns may set)."""
    table = Table(title=f"Parameters of {spec.name}")
    for col in ("name", "type", "default", "description"):
        table.add_column(col, no_wrap=col in ("name", "type"), overflow="fold")
    for name, param in spec.params.items():
        table.add_row(name, param.type, _default_text(param.default, param.required), escape(param.description))
    return table


def _default_text(default: Any, required: bool) -> str:
    if default is None:
        return "[bold]required[/]" if required else "—"
    text = json.dumps(default, default=str)
    if len(text) > 40:
        text = f"({len(default)} items)" if isinstance(default, list) else text[:37] + "..."
    return escape(text)


def plan_table(plan: Plan) -> Table:
    table = Table(title=f"Plan for {plan.pipeline}")
    for col in ("step", "generator", "runs", "from cache", "estimate"):
        table.add_column(col, justify="right" if col in ("runs", "from cache", "estimate") else "left")
    for s in plan.steps:
        estimate = "unknown" if s.unpriced else ("≈" if s.uncertain else "") + usd(s.total_usd)
        table.add_row(s.step, s.generator, str(s.count), str(sum(s.cached)), estimate)
    cap = f" (cap {usd(plan.max_cost_usd)})" if plan.max_cost_usd is not None else ""
    hits = sum(sum(s.cached) for s in plan.steps)
    unknown = " + unknown" if plan.unpriced_steps else ""
    table.add_row("total", "", str(plan.step_count), str(hits), usd(plan.total_usd) + unknown + cap, style="bold")
    return table


def batch_plan_table(plan: BatchPlan) -> Table:
    table = Table(title=f"Batch plan for {plan.pipeline}: {plan.valid_count} row(s)")
    for col in ("step", "generator", "runs", "from cache", "estimate"):
        table.add_column(col, justify="left" if col in ("step", "generator") else "right")
    for s in plan.steps.values():
        estimate = ("≈" if s.approximate else "") + usd(s.estimate_usd)
        table.add_row(s.step, s.generator, str(s.runs), str(s.cached + s.repeats), estimate)
    cap = f" (cap {usd(plan.max_cost_usd)})" if plan.max_cost_usd is not None else ""
    hits = sum(s.cached + s.repeats for s in plan.steps.values())
    runs = sum(s.runs for s in plan.steps.values())
    table.add_row("total", "", str(runs), str(hits), usd(plan.total_usd) + cap, style="bold")
    return table


def problems_table(plan: BatchPlan) -> Table:
    table = Table(title=f"{len(plan.problems)} problem(s): these rows are skipped", title_style="yellow")
    for col in ("row", "column", "reason"):
        table.add_column(col, justify="right" if col == "row" else "left")
    for p in plan.problems:
        table.add_row(str(p.row), escape(p.column or "—"), escape(p.reason))
    return table


def cost_table(records: list[CostRecord]) -> Table:
    table = Table(title="Cost tally", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("step", "generator", "status", "estimated", "actual", "saved", "wall s"):
        right = col in ("estimated", "actual", "saved", "wall s")
        table.add_column(col, justify="right" if right else "left", no_wrap=col in ("step", "generator"))
    for r in records:
        actual = usd(r.actual_usd) + ("*" if r.actual_is_estimate and r.actual_usd else "")
        status = f"{r.status} ({r.remade})" if r.remade else r.status
        table.add_row(
            r.step, r.generator, status, usd(r.estimated_usd), actual, usd(r.saved_usd), f"{r.wall_seconds:.1f}"
        )
    t = totals(records)
    table.add_row("total", "", "", usd(t["estimated_usd"]), usd(t["actual_usd"]), usd(t["saved_usd"]), "", style="bold")
    return table


def lineage_tree(root: LineageNode) -> Tree:
    tree = Tree("lineage")
    branches = [(tree, root)]
    while branches:  # breadth-first and iterative: a long chain cannot exhaust the stack
        parent, node = branches.pop(0)
        branch = parent.add(_lineage_label(node))
        branches += [(branch, source) for source in node.parents]
    return tree


def plain(text: object) -> str:
    """Text from files or providers, safe to print: rich markup escaped, control characters (ESC…) dropped."""
    cleaned = "".join(c if c.isprintable() or c == " " else "\ufffd" for c in str(text))
    return escape(cleaned)


def _lineage_label(node: LineageNode) -> str:
    short = plain(node.sha256[:12])
    if node.missing:
        return f"{short} [red](no sidecar in this store)[/]"
    if node.unreadable:
        return f"{short} [red](unreadable sidecar: {plain(node.unreadable)})[/]"
    if node.cut:
        return f"{short} [yellow](deeper lineage not shown)[/]"
    facts = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in node.facts.items())
    step = f" step {plain(node.step)}" if node.step else ""
    repeated = " [dim](shown above)[/]" if node.repeated else ""
    return (
        f"[bold]{plain(node.kind)}[/] {short} {plain(node.format)} {plain(facts)} "
        f"← [cyan]{plain(node.generator or 'imported')}[/]{step}{repeated}"
    )
