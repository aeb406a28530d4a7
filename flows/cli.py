"""The `boardflow` command: plan and run pipelines, the offline demo, and the inspection commands."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

import flows  # noqa: F401  (offline-safe Prefect defaults before prefect is imported)

# The terminal shows its own live step table; Prefect's INFO lines still reach the API (and the UI).
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")

from generators.errors import BoardflowError  # noqa: E402

console = Console()
err_console = Console(stderr=True)
app = typer.Typer(
    help="boardflow: generative-media pipelines on Prefect 3.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

PIPELINES_DIR = Path(__file__).resolve().parents[1] / "pipelines"
ParamOpt = Annotated[
    list[str],
    typer.Option("--param", "-p", help="KEY=VALUE (VALUE read as YAML; @file.yaml reads a file). Repeatable."),
]
RefreshOpt = Annotated[bool, typer.Option("--refresh", help="Run every step even when a cached result exists.")]


def parse_params(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE.", param_hint="--param")
        if raw.startswith("@"):
            raw = Path(raw[1:]).read_text(encoding="utf-8")
        try:
            values[key.strip()] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as exc:
            raise typer.BadParameter(f"value of {key} is not valid YAML: {exc}", param_hint="--param") from exc
    return values


def resolve_spec_path(spec: str) -> Path:
    """A path, or the name of a pipeline shipped in pipelines/ ("storyboard")."""
    path = Path(spec)
    if not path.exists() and (PIPELINES_DIR / f"{spec}.yaml").exists():
        return PIPELINES_DIR / f"{spec}.yaml"
    return path


def fail(exc: BaseException) -> None:
    if isinstance(exc, BoardflowError):
        err_console.print(f"[bold red]error:[/] {exc.message}")
        if exc.hint:
            err_console.print(f"[yellow]what to do:[/] {exc.hint}")
    else:
        err_console.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}")
    raise typer.Exit(1)


@app.command()
def plan(
    spec: Annotated[str, typer.Argument(help="Pipeline YAML path, or a shipped pipeline name.")],
    param: ParamOpt = [],
    refresh: RefreshOpt = False,
) -> None:
    """Check a pipeline and print its steps and cost plan (nothing is run or spent)."""
    from .pipeline import plan_pipeline
    from .spec import PipelineSpec

    try:
        model = PipelineSpec.load(resolve_spec_path(spec))
        result = asyncio.run(plan_pipeline(model, parse_params(param), refresh=refresh))
    except BoardflowError as exc:
        fail(exc)
    console.print(result.rich_table())
    console.print("Order: " + " → ".join(result.order))
    if result.over_budget:
        err_console.print(f"[bold red]Over budget:[/] the plan exceeds max_cost_usd {result.max_cost_usd}.")
        raise typer.Exit(2)


@app.command()
def run(
    spec: Annotated[str, typer.Argument(help="Pipeline YAML path, or a shipped pipeline name.")],
    param: ParamOpt = [],
    refresh: RefreshOpt = False,
    out: Annotated[Path | None, typer.Option(help="Copy the outputs into this folder.")] = None,
) -> None:
    """Validate, plan and run a pipeline as a Prefect flow; print outputs and the cost tally."""
    from .spec import PipelineSpec

    try:
        model = PipelineSpec.load(resolve_spec_path(spec))
        params = parse_params(param)
    except BoardflowError as exc:
        fail(exc)
    _run_flow(model.model_dump(mode="json"), params, refresh, out)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where to put the finished video.")] = Path("out"),
    refresh: RefreshOpt = False,
) -> None:
    """The main job: the offline storyboard pipeline on its built-in scenes → out/storyboard.mp4."""
    from .spec import PipelineSpec

    model = PipelineSpec.load(PIPELINES_DIR / "storyboard.yaml")
    _run_flow(model.model_dump(mode="json"), {}, refresh, out)


def _run_flow(spec: dict[str, Any], params: dict[str, Any], refresh: bool, out: Path | None) -> None:
    from .pipeline import run_pipeline
    from .progress import RunProgress

    async def go() -> tuple[Any, BaseException | None]:
        state = await run_pipeline(spec=spec, params=params, refresh=refresh, return_state=True)
        if state.is_completed():
            return await state.result(), None
        exc = await state.result(raise_on_failure=False)
        return None, exc if isinstance(exc, BaseException) else RuntimeError(str(state.message))

    with RunProgress(console) as progress:
        result, error = asyncio.run(go())
    if progress.records:
        from .costs import rich_table

        console.print(rich_table(progress.records))
    if error is not None:
        _print_run_url(progress.flow_run_id)
        fail(error)
    _print_outputs(result["outputs"], spec["name"], out)
    _print_run_url(progress.flow_run_id)


def _print_outputs(outputs: dict[str, Any], pipeline: str, out: Path | None) -> None:
    from urllib.parse import unquote, urlparse

    for name, value in outputs.items():
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if not (isinstance(item, dict) and "storage_url" in item):
                console.print(f"[bold]{name}[/]: {item}")
                continue
            url = item["storage_url"]
            shown = url
            if out is not None and urlparse(url).scheme == "file":
                out.mkdir(parents=True, exist_ok=True)
                suffix = f"-{i}" if isinstance(value, list) else ""
                dest = out / f"{pipeline if name in ('video', 'output') else name}{suffix}.{item['format']}"
                shutil.copyfile(unquote(urlparse(url).path), dest)
                shown = str(dest)
            facts = {k: item[k] for k in ("width", "height", "duration") if k in item}
            console.print(f"[bold green]{name}[/]: {shown}  {facts}")


def _print_run_url(flow_run_id: str | None) -> None:
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    if flow_run_id and PREFECT_API_URL.value():
        console.print(f"Prefect run: {PREFECT_UI_URL.value()}/runs/flow-run/{flow_run_id}")


def main() -> None:
    from . import (
        cli_batch,  # noqa: F401  (registers `batch` and `blocks register`)
        cli_inspect,  # noqa: F401  (registers the inspection commands)
        cli_ops,  # noqa: F401  (registers `server` and `serve`)
    )

    try:
        app()
    except BoardflowError as exc:
        fail(exc)


if __name__ == "__main__":
    sys.exit(main())
