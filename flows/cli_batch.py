"""The `boardflow batch` command (a pipeline over the rows of a CSV) and `boardflow blocks register`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from generators.errors import BoardflowError

from .cli import RefreshOpt, _print_run_url, app, console, err_console, fail, resolve_spec_path

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="KEY=VALUE for every row, over its CSV cell (read like a cell). Repeatable."),
]


@app.command("batch")
def batch_command(
    spec: Annotated[str, typer.Argument(help="Pipeline YAML path, or a shipped pipeline name.")],
    csv: Annotated[Path, typer.Argument(help="CSV whose columns are the pipeline's parameters; one run per row.")],
    set_: SetOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Run nothing if any row is invalid.")] = False,
    max_cost: Annotated[
        float | None, typer.Option("--max-cost", help="Cap in USD for the whole batch (default: max_cost_usd).")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Rows run at once.")] = 2,
    only_failed: Annotated[
        Path | None, typer.Option("--only-failed", help="Run only the failed/invalid rows of this results CSV.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write OUT.csv and OUT.parquet (default batch-results/<csv>-<time>).")
    ] = None,
    store_block: Annotated[
        str | None, typer.Option("--store-block", help="Keep artifacts where this artifact-store block says.")
    ] = None,
    refresh: RefreshOpt = False,
) -> None:
    """Run a pipeline once per CSV row: rows checked and the batch planned first, then run within provider limits."""
    from .batch import batch
    from .spec import PipelineSpec

    try:
        model = PipelineSpec.load(resolve_spec_path(spec))
        overrides = assignments(set_ or [])
    except BoardflowError as exc:
        fail(exc)
    stem = out or Path("batch-results") / f"{csv.stem}-{datetime.now():%Y%m%d-%H%M%S}"

    async def go() -> tuple[BaseException | None, str]:
        state = await batch(
            spec=model.model_dump(mode="json"),
            rows=str(csv),
            overrides=overrides,
            strict=strict,
            max_cost_usd=max_cost,
            concurrency=concurrency,
            refresh=refresh,
            store_block=store_block,
            results_path=str(stem),
            only_failed=str(only_failed) if only_failed else None,
            return_state=True,
        )
        run_id = str(state.state_details.flow_run_id)
        if state.is_completed():
            return None, run_id
        exc = await state.result(raise_on_failure=False)
        return exc if isinstance(exc, BaseException) else RuntimeError(str(state.message)), run_id

    with BatchDisplay(console) as display:
        error, run_id = asyncio.run(go())
    display.print_results()
    _print_run_url(run_id)
    if error is not None:
        fail(error)


def assignments(pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE pairs as text: each VALUE is then read like a CSV cell, by the parameter's type."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE.", param_hint="--set")
        values[key.strip()] = raw
    return values


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
        self._task = None

    def __enter__(self) -> BatchDisplay:
        from .batch import add_batch_listener

        self._remove = add_batch_listener(self._on_event)
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)
        self._remove()

    def _on_event(self, event: str, details: dict[str, Any]) -> None:
        if event == "plan":
            plan = details["plan"]
            self.console.print(plan.rich_table())
            if plan.problems:
                table = Table(title=f"{len(plan.problems)} problem(s): these rows are skipped", title_style="yellow")
                for col in ("row", "column", "reason"):
                    table.add_column(col, justify="right" if col == "row" else "left")
                for p in plan.problems:
                    table.add_row(str(p.row), p.column or "—", p.reason)
                self.console.print(table)
            total = len(plan.valid_rows)
            self._task = self._progress.add_task("rows", total=total, counts=_counts(0, 0, total))
        elif event == "row" and self._task is not None:
            done, failed, total = details["done"], details["failed"], details["total"]
            self._progress.update(self._task, completed=done + failed, counts=_counts(done, failed, total))
        elif event == "finished":
            self.results = details["results"]
            self.summary = details["summary"]

    def print_results(self, limit: int = 30) -> None:
        if not self.summary:
            return
        if not self.summary.get("rows"):
            self.console.print("No rows to run: every row of that results file succeeded.")
            return
        from .costs import usd

        shown = self.results if len(self.results) <= limit else [r for r in self.results if r.status != "completed"]
        table = Table(title=f"Batch results ({len(self.results)} rows)")
        for col in ("row", "status", "cost", "cached", "output / error"):
            table.add_column(col, justify="right" if col in ("row", "cost") else "left")
        for r in shown[:limit]:
            colour = {"completed": "green", "cached": "green", "failed": "red", "invalid": "yellow"}[r.status]
            detail = r.output_urls if r.status in ("completed", "cached") else r.error[:160]
            table.add_row(
                str(r.row), f"[{colour}]{r.status}[/]", usd(r.cost_usd), f"{r.cached_steps}/{r.steps}", detail
            )
        self.console.print(table)
        s = self.summary
        self.console.print(
            f"[bold]{s['completed']} completed · {s['cached']} from cache · {s['failed']} failed · "
            f"{s['invalid']} invalid[/] — spent {usd(s['spent_usd'])}, saved {usd(s['saved_usd'])}"
        )
        self.console.print(f"Results: {s['results_csv']}  {s['results_parquet']}")


def _counts(done: int, failed: int, total: int) -> str:
    return f"[green]{done} done[/] · [red]{failed} failed[/] · {total - done - failed} remaining"


blocks_app = typer.Typer(help="Prefect blocks for provider keys and the artifact store.", no_args_is_help=True)
app.add_typer(blocks_app, name="blocks")


@blocks_app.command("register")
def blocks_register() -> None:
    """Register boardflow's block types with the Prefect API (like `prefect block register -m blocks`)."""
    from blocks import register_block_types

    try:
        names = asyncio.run(register_block_types())
    except Exception as exc:  # the API is down or refuses: say so plainly
        err_console.print(f"[bold red]error:[/] could not register the block types: {type(exc).__name__}: {exc}")
        err_console.print("[yellow]what to do:[/] check PREFECT_API_URL (or start one with `boardflow server`).")
        raise typer.Exit(1) from None
    table = Table(title=f"Registered {len(names)} block types")
    table.add_column("block type")
    for name in names:
        table.add_row(name)
    console.print(table)
    console.print(
        "Save a key in the UI (Blocks → +) or in Python, e.g. "
        "[bold]FalCredentials(api_key='…').save('studio-fal')[/], then set [bold]FAL_KEY_BLOCK=studio-fal[/]."
    )
