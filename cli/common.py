"""What every command shares: the consoles, option types, KEY=VALUE parsing, and how an error is shown."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from generators.errors import BoardflowError

console = Console()
err_console = Console(stderr=True)

ParamOpt = Annotated[
    list[str],
    typer.Option("--param", "-p", help="KEY=VALUE (VALUE read as YAML; @file.yaml reads a file). Repeatable."),
]
RefreshOpt = Annotated[bool, typer.Option("--refresh", help="Run every step even when a cached result exists.")]
SpecArg = Annotated[str, typer.Argument(help="Pipeline YAML path, or a shipped pipeline name.")]


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


def fail(exc: BaseException) -> NoReturn:
    if isinstance(exc, BoardflowError):
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}")
        if exc.hint:
            err_console.print(f"[yellow]what to do:[/] {escape(exc.hint)}")
    else:
        err_console.print(f"[bold red]error:[/] {type(exc).__name__}: {escape(str(exc))}")
    raise typer.Exit(1)


def print_run_url(flow_run_id: str | None) -> None:
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    if flow_run_id and PREFECT_API_URL.value():
        console.print(f"Prefect run: {PREFECT_UI_URL.value()}/runs/flow-run/{flow_run_id}")
