"""The `boardflow batch` command: a pipeline over the rows of a CSV, planned first, with live row progress."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.events import subscribe
from flows.pipeline.spec import PipelineSpec
from generators.errors import BoardflowError, InputError

from .common import (
    Interrupted,
    RefreshOpt,
    SpecArg,
    console,
    err_console,
    fail,
    patient_temporary_server,
    print_run_url,
    require_services,
    run_interruptible,
)
from .display import BatchDisplay

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="KEY=VALUE for every row, over its CSV cell (read like a cell). Repeatable."),
]


def batch_command(
    spec: SpecArg,
    csv: Annotated[
        Path, typer.Argument(help="CSV (or .parquet) whose columns are the pipeline's parameters; one run per row.")
    ],
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
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", help="Copy each row's outputs into this folder (row-N-<output>.<ext>).")
    ] = None,
    refresh: RefreshOpt = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --out-dir: replace files that hold other bytes.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the batch summary as JSON for scripts.")] = False,
    on_workers: Annotated[
        bool,
        typer.Option(
            "--on-workers",
            help="Run each row as a flow run of the `pipeline` deployment on the work pool's workers (any machine); "
            "--concurrency is then the rows submitted and unfinished at once. Needs PREFECT_API_URL, "
            "`prefect deploy --all` and a running `prefect worker start --pool boardflow`.",
        ),
    ] = False,
    max_rows: Annotated[
        int | None,
        typer.Option(
            "--max-rows",
            min=1,
            help="Refuse a CSV of more rows than this, before anything runs "
            "(default: $BOARDFLOW_MAX_BATCH_ROWS, else 100,000).",
        ),
    ] = None,
) -> None:
    """Run a pipeline once per CSV row: rows checked and the batch planned first, then run within provider limits.

    The spec, the CSV (file, encoding, header, columns), --set values and --only-failed are checked before
    Prefect starts; a row with a bad cell is reported by row and column and skipped (--strict: nothing runs).
    By default the rows run in this process; with --on-workers they are spread over the pool's workers.
    """
    try:
        model = PipelineSpec.resolve(spec)
        overrides = assignments(set_ or [])
        preflight(model, csv, overrides, only_failed, max_rows, out_dir)
        require_services()
        if on_workers:
            run_flow = workers_batch(spec)
        else:
            from flows.batch.flow import batch

            run_flow = partial(batch, spec=model)
    except BoardflowError as exc:
        fail(exc)

    async def go() -> tuple[BaseException | None, str]:
        state = await run_flow(
            rows=str(csv),
            overrides=overrides,
            strict=strict,
            max_cost_usd=max_cost,
            concurrency=concurrency,
            refresh=refresh,
            store_block=store_block,
            results_path=str(out) if out else None,
            only_failed=str(only_failed) if only_failed else None,
            max_rows=max_rows,
            return_state=True,
        )
        run_id = str(state.state_details.flow_run_id)
        if state.is_completed():
            return None, run_id
        exc = await state.result(raise_on_failure=False)
        return exc if isinstance(exc, BaseException) else RuntimeError(str(state.message)), run_id

    display = BatchDisplay(err_console if as_json else console)
    try:
        with patient_temporary_server(), display, subscribe(display):
            error, run_id = run_interruptible(go)
    except Interrupted as stop:
        err_console.print(
            f"[yellow]Stopped {stop.how}.[/] Rows that finished are kept in the cache; run the same command to resume."
        )
        raise typer.Exit(stop.exit_code) from None
    except BoardflowError as exc:  # the temporary server did not start
        fail(exc)
    files = collect_rows(display.results, out_dir, force) if out_dir and store_block is None else {}
    if as_json:
        print(json.dumps({**display.summary, "run_id": run_id, "files": files}, default=str))
    else:
        display.print_results()
        print_run_url(run_id)
    if error is not None:
        fail(error)


def workers_batch(spec: str) -> Callable[..., Awaitable[State]]:
    """The on-workers batch flow for `spec`, once the server, the deployment, its pool and a worker are there."""
    import asyncio

    from deployments.worker_batch import batch_on_workers, check_workers

    asyncio.run(check_workers())
    # The workers resolve the pipeline themselves: a name in pipelines/, or a file at the same path on their machine.
    pipeline = str(Path(spec).resolve()) if Path(spec).is_file() else spec
    return partial(batch_on_workers, pipeline=pipeline)


def preflight(
    spec: PipelineSpec,
    csv: Path,
    overrides: dict[str, str],
    only_failed: Path | None,
    max_rows: int | None = None,
    out_dir: Path | None = None,
) -> None:
    """What the batch would refuse as a whole, refused before Prefect starts (row problems are the flow's)."""
    from flows.batch.results import failed_rows
    from flows.batch.rows import check_columns, check_overrides
    from flows.batch.source import RowSource, require_rows
    from flows.batch.source import max_rows as row_cap
    from flows.batch.writer import KEPT_RESULTS
    from flows.pipeline.validate import validate
    from generators.registry import get_registry

    validate(spec, get_registry())
    rows = RowSource(csv, row_cap(max_rows))
    count = rows.count()
    if only_failed is None:
        require_rows(count, rows)
    else:
        failed_rows(str(only_failed), spec.name, count)
    check_columns(spec, rows.columns())
    check_overrides(spec, overrides)
    if out_dir is not None and count > KEPT_RESULTS:
        raise InputError(
            f"--out-dir copies the outputs of at most {KEPT_RESULTS:,} rows; {csv} has {count:,}.",
            hint="Leave out --out-dir: the results CSV lists every row's output URLs.",
        )


def collect_rows(results: list, out_dir: Path, force: bool) -> dict[str, str]:
    """Each finished row's outputs copied (verified) into `out_dir` as row-N-<output>.<ext>."""
    from flows.pipeline.flow import PipelineRun
    from generators.storage import open_store

    from .run import collect_outputs

    store, files = open_store(), {}
    for row in results:
        if not row.outputs:
            continue
        result = PipelineRun(pipeline=f"row-{row.row}", outputs=row.outputs, records=[])
        renamed = PipelineRun(
            pipeline=result.pipeline, outputs={f"row-{row.row}-{k}": v for k, v in result.outputs.items()}, records=[]
        )
        for (name, index), path in collect_outputs(renamed, out_dir, force, store).items():
            files[name if index is None else f"{name}[{index}]"] = str(path)
    return files


def assignments(pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE pairs as text: each VALUE is then read like a CSV cell, by the parameter's type."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {pair!r} is not KEY=VALUE.", hint="Write it as --set name=value.")
        values[key.strip()] = raw
    return values
