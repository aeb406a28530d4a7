"""`boardflow plan`, `run` and `demo`: check a pipeline and show its cost plan; run it as a Prefect flow."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from flows.events import subscribe
from flows.pipeline.flow import PipelineRun
from flows.pipeline.plan import Plan
from flows.pipeline.spec import PipelineSpec
from generators.artifacts import Artifact
from generators.errors import BoardflowError, StorageError
from generators.storage import ArtifactStore, open_store, sha256_file

from .common import (
    Interrupted,
    ParamOpt,
    RefreshOpt,
    SpecArg,
    console,
    err_console,
    fail,
    mark_cancelled,
    parse_params,
    print_run_url,
    require_services,
    run_interruptible,
)
from .display import RunProgress, cost_table, params_table, plan_table

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts instead of tables.")]
OutOpt = Annotated[Path | None, typer.Option(help="Copy the outputs into this folder (never over other bytes).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="With --out: replace files that hold other bytes.")]


def plan(spec: SpecArg, param: ParamOpt = [], refresh: RefreshOpt = False, as_json: JsonOpt = False) -> None:
    """Check a pipeline and print its parameters, steps and cost plan (nothing is run or spent)."""
    try:
        model = PipelineSpec.resolve(spec)
    except BoardflowError as exc:
        fail(exc)
    if not as_json:
        console.print(params_table(model))
    try:
        result = preflight(model, parse_params(param), refresh)
    except BoardflowError as exc:
        fail(exc)
    for warning in result.warnings:
        err_console.print(f"[bold yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    if as_json:
        summary = {"pipeline": model.name, "order": result.order, "steps": result.rows()}
        summary |= {"total_usd": str(result.total_usd), "over_budget": result.over_budget}
        print(json.dumps(summary | {"warnings": result.warnings}))
    else:
        console.print(plan_table(result))
        console.print("Order: " + " → ".join(result.order))
    if result.over_budget:
        if unpriced := result.unpriced_steps:
            err_console.print(
                f"[bold red]Over budget:[/] {', '.join(unpriced)} use a model with no known price, so "
                f"max_cost_usd {result.max_cost_usd} cannot be kept. Add the price to its catalogue entry."
            )
        else:
            err_console.print(f"[bold red]Over budget:[/] the plan exceeds max_cost_usd {result.max_cost_usd}.")
        raise typer.Exit(2)


def run(
    spec: SpecArg,
    param: ParamOpt = [],
    refresh: RefreshOpt = False,
    out: OutOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Check, plan and run a pipeline as a Prefect flow; print outputs and the cost tally.

    Every mistake in the spec or the parameters is reported before Prefect starts. Ctrl-C stops the run
    (it is left Cancelled); running the same command again resumes from the steps that finished.
    """
    try:
        model = PipelineSpec.resolve(spec)
        params = parse_params(param)
    except BoardflowError as exc:
        fail(exc)
    run_flow(model, params, refresh, out, force=force, as_json=as_json)


def demo(
    out: Annotated[Path, typer.Option(help="Where to put the finished video.")] = Path("out"),
    refresh: RefreshOpt = False,
    force: ForceOpt = False,
) -> None:
    """The main job: the offline storyboard pipeline on its built-in scenes → out/storyboard.mp4."""
    run_flow(PipelineSpec.resolve("storyboard"), {}, refresh, out, force=force)


def preflight(spec: PipelineSpec, params: dict[str, Any], refresh: bool = False) -> Plan:
    """Validate and plan without Prefect: what a run would refuse, refused here in a second with no run left behind."""
    from flows.pipeline.flow import plan_pipeline

    return asyncio.run(plan_pipeline(spec, params, refresh=refresh))


def run_flow(
    spec: PipelineSpec,
    params: dict[str, Any],
    refresh: bool,
    out: Path | None,
    force: bool = False,
    as_json: bool = False,
) -> None:
    from flows.pipeline.flow import run_pipeline

    try:
        planned = preflight(spec, params, refresh)
        require_services()
    except BoardflowError as exc:
        fail(exc)
    if planned.over_budget and planned.unpriced_steps:
        fail(
            BoardflowError(
                f"{', '.join(planned.unpriced_steps)} use a model with no known price, so max_cost_usd "
                f"{spec.max_cost_usd} cannot be kept; nothing was run.",
                hint="Add the provider's price to the model's catalogue entry (price.terms), or drop the cap.",
            )
        )
    if planned.over_budget:
        fail(
            BoardflowError(f"The plan ({planned.total_usd}) is over max_cost_usd {spec.max_cost_usd}; nothing was run.")
        )

    async def go() -> tuple[PipelineRun | None, BaseException | None]:
        state = await run_pipeline(spec=spec, params=params, refresh=refresh, return_state=True)
        if state.is_completed():
            return await state.result(), None
        exc = await state.result(raise_on_failure=False)
        return None, exc if isinstance(exc, BaseException) else RuntimeError(str(state.message))

    progress = RunProgress(err_console if as_json else console, planned=planned.step_count)
    try:
        with progress, subscribe(progress):
            result, error = run_interruptible(go)
    except Interrupted as stop:
        saved = sum(1 for r in progress.records_so_far if r.status in ("completed", "cached"))
        message = f"Interrupted {stop.how}; {saved} step run(s) had finished and are kept in the cache."
        asyncio.run(mark_cancelled(progress.flow_run_id, message))
        err_console.print(f"[yellow]Stopped.[/] {saved} of {planned.step_count} step runs finished and are saved.")
        err_console.print("Run the same command again to resume: finished steps come from the cache at $0.")
        print_run_url(progress.flow_run_id)
        raise typer.Exit(stop.exit_code) from None
    if progress.records and not as_json:
        console.print(cost_table(progress.records))
    if error is not None or result is None:
        print_run_url(progress.flow_run_id)
        fail(error or RuntimeError("the run returned nothing"))
    copied = collect_outputs(result, out, force, open_store()) if out is not None else {}
    if as_json:
        data = result.model_dump(mode="json")
        data["files"] = {name if i is None else f"{name}[{i}]": str(path) for (name, i), path in copied.items()}
        print(json.dumps(data))
        return
    print_outputs(result, copied)
    print_run_url(progress.flow_run_id)


def collect_outputs(
    result: PipelineRun, out: Path, force: bool, store: ArtifactStore
) -> dict[tuple[str, int | None], Path]:
    """Copy each output artifact into `out` under a safe name. Only objects of the run's store are copied,
    and only bytes whose sha256 is the artifact's; a file already there with other bytes is kept (the new
    one gets its hash in the name) unless `force`."""
    out.mkdir(parents=True, exist_ok=True)
    copied: dict[tuple[str, int | None], Path] = {}
    for name, index, artifact in result.artifacts():
        key = store.key_for(artifact.storage_url)
        if key is None or not key.startswith("objects/"):
            err_console.print(f"[yellow]not copied:[/] {name} is not an object of the store {store.root_url}.")
            continue
        stem = safe_name(result.pipeline if name in ("video", "output") else name)
        dest = out / f"{stem}{'' if index is None else f'-{index}'}.{safe_name(artifact.format)}"
        copied[(name, index)] = asyncio.run(_copy_verified(store, key, artifact, dest, force))
    return copied


def safe_name(text: str) -> str:
    """One plain file name part: letters, digits, '_' and '-' (anything else, '/' and '.' too, becomes one '_')."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:120] or "output"


async def _copy_verified(store: ArtifactStore, key: str, artifact: Artifact, dest: Path, force: bool) -> Path:
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    try:
        await store.get_to_path(key, tmp)
        sha, _ = sha256_file(tmp)
        if sha != artifact.sha256:
            raise StorageError(
                f"{artifact.storage_url} holds other bytes than the artifact it names (sha256 {sha[:12]}, "
                f"expected {artifact.short}); not copied.",
                hint="Run again with --refresh to make it anew.",
            )
        if dest.exists() and not force and sha256_file(dest)[0] != sha:
            dest = dest.with_name(f"{dest.stem}-{artifact.short}{dest.suffix}")
            err_console.print(f"[yellow]note:[/] kept the other file already there; wrote {dest} (--force replaces)")
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def print_outputs(result: PipelineRun, copied: dict[tuple[str, int | None], Path]) -> None:
    shown = set()
    for name, index, artifact in result.artifacts():
        shown.add(name)
        label = name if index is None else f"{name}[{index}]"
        copy = copied.get((name, index))
        where = str(copy.resolve()) if copy else artifact.storage_url
        facts = ", ".join(
            f"{k} {getattr(artifact, k)}" for k in ("width", "height", "duration") if hasattr(artifact, k)
        )
        console.print(f"[bold green]{label}[/] ({artifact.kind}{', ' + facts if facts else ''}):")
        console.print(f"  {where}", soft_wrap=True, markup=False, highlight=False)
    for name, value in result.outputs.items():
        if name not in shown:
            console.print(f"[bold]{name}[/]: {json.dumps(value, default=str)}", soft_wrap=True)
