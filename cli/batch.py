"""The `boardflow batch` command: a pipeline over the rows of a CSV, planned first, with live row progress."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from flows.events import subscribe
from flows.pipeline.spec import PipelineSpec
from generators.errors import BoardflowError

from .common import RefreshOpt, SpecArg, console, fail, print_run_url
from .display import BatchDisplay

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="KEY=VALUE for every row, over its CSV cell (read like a cell). Repeatable."),
]


def batch_command(
    spec: SpecArg,
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
        Path | None,
        typer.Option("--out", help="Write OUT.csv and OUT.parquet (default: <data folder>/batches/<pipeline>-<time>)."),
    ] = None,
    store_block: Annotated[
        str | None, typer.Option("--store-block", help="Keep artifacts where this artifact-store block says.")
    ] = None,
    refresh: RefreshOpt = False,
) -> None:
    """Run a pipeline once per CSV row: rows checked and the batch planned first, then run within provider limits."""
    from flows.batch.flow import batch

    try:
        model = PipelineSpec.resolve(spec)
        overrides = assignments(set_ or [])
    except BoardflowError as exc:
        fail(exc)

    async def go() -> tuple[BaseException | None, str]:
        state = await batch(
            spec=model,
            rows=str(csv),
            overrides=overrides,
            strict=strict,
            max_cost_usd=max_cost,
            concurrency=concurrency,
            refresh=refresh,
            store_block=store_block,
            results_path=str(out) if out else None,
            only_failed=str(only_failed) if only_failed else None,
            return_state=True,
        )
        run_id = str(state.state_details.flow_run_id)
        if state.is_completed():
            return None, run_id
        exc = await state.result(raise_on_failure=False)
        return exc if isinstance(exc, BaseException) else RuntimeError(str(state.message)), run_id

    with BatchDisplay(console) as display, subscribe(display):
        error, run_id = asyncio.run(go())
    display.print_results()
    print_run_url(run_id)
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
