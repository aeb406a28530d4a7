"""`boardflow plan`, `run` and `demo`: check a pipeline and show its cost plan; run it as a Prefect flow."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlparse

import typer

from flows.events import subscribe
from flows.pipeline.flow import PipelineRun
from flows.pipeline.spec import PipelineSpec
from generators.errors import BoardflowError

from .common import ParamOpt, RefreshOpt, SpecArg, console, err_console, fail, parse_params, print_run_url
from .display import RunProgress, cost_table, plan_table


def plan(spec: SpecArg, param: ParamOpt = [], refresh: RefreshOpt = False) -> None:
    """Check a pipeline and print its steps and cost plan (nothing is run or spent)."""
    from flows.pipeline.flow import plan_pipeline

    try:
        model = PipelineSpec.resolve(spec)
        result = asyncio.run(plan_pipeline(model, parse_params(param), refresh=refresh))
    except BoardflowError as exc:
        fail(exc)
    console.print(plan_table(result))
    console.print("Order: " + " → ".join(result.order))
    if result.over_budget:
        err_console.print(f"[bold red]Over budget:[/] the plan exceeds max_cost_usd {result.max_cost_usd}.")
        raise typer.Exit(2)


def run(
    spec: SpecArg,
    param: ParamOpt = [],
    refresh: RefreshOpt = False,
    out: Annotated[Path | None, typer.Option(help="Copy the outputs into this folder.")] = None,
) -> None:
    """Validate, plan and run a pipeline as a Prefect flow; print outputs and the cost tally."""
    try:
        model = PipelineSpec.resolve(spec)
        params = parse_params(param)
    except BoardflowError as exc:
        fail(exc)
    run_flow(model, params, refresh, out)


def demo(
    out: Annotated[Path, typer.Option(help="Where to put the finished video.")] = Path("out"),
    refresh: RefreshOpt = False,
) -> None:
    """The main job: the offline storyboard pipeline on its built-in scenes → out/storyboard.mp4."""
    run_flow(PipelineSpec.resolve("storyboard"), {}, refresh, out)


def run_flow(spec: PipelineSpec, params: dict[str, Any], refresh: bool, out: Path | None) -> None:
    from flows.pipeline.flow import run_pipeline

    async def go() -> tuple[PipelineRun | None, BaseException | None]:
        state = await run_pipeline(spec=spec, params=params, refresh=refresh, return_state=True)
        if state.is_completed():
            return await state.result(), None
        exc = await state.result(raise_on_failure=False)
        return None, exc if isinstance(exc, BaseException) else RuntimeError(str(state.message))

    with RunProgress(console) as progress, subscribe(progress):
        result, error = asyncio.run(go())
    if progress.records:
        console.print(cost_table(progress.records))
    if error is not None or result is None:
        print_run_url(progress.flow_run_id)
        fail(error or RuntimeError("the run returned nothing"))
    print_outputs(result, out)
    print_run_url(progress.flow_run_id)


def print_outputs(result: PipelineRun, out: Path | None) -> None:
    shown = set()
    for name, index, artifact in result.artifacts():
        shown.add(name)
        where = artifact.storage_url
        if out is not None and urlparse(where).scheme == "file":
            out.mkdir(parents=True, exist_ok=True)
            stem = result.pipeline if name in ("video", "output") else name
            dest = out / f"{stem}{'' if index is None else f'-{index}'}.{artifact.format}"
            shutil.copyfile(unquote(urlparse(where).path), dest)
            where = str(dest)
        facts = {k: getattr(artifact, k) for k in ("width", "height", "duration") if hasattr(artifact, k)}
        console.print(f"[bold green]{name}[/]: {where}  {facts}")
    for name, value in result.outputs.items():
        if name not in shown:
            console.print(f"[bold]{name}[/]: {value}")
