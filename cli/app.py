"""The `boardflow` command: every subcommand wired here, explicitly, from the modules that implement them."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import NoReturn

import typer
from rich.markup import escape


def _project_prefect_home() -> None:
    """Without a server of the user's (no PREFECT_API_URL, in the environment or the active Prefect profile)
    and no PREFECT_HOME of theirs, Prefect's temporary server keeps its database in the project's data folder:
    then `boardflow costs` and the runs are this project's, not mixed with every other project's."""
    if os.environ.get("PREFECT_HOME") or os.environ.get("PREFECT_API_URL"):
        return
    profiles = Path.home() / ".prefect" / "profiles.toml"
    try:
        config = tomllib.loads(profiles.read_text(encoding="utf-8")) if profiles.is_file() else {}
    except (OSError, tomllib.TOMLDecodeError):
        return  # a profile we cannot read may point at a server: leave Prefect's home alone
    active = os.environ.get("PREFECT_PROFILE") or config.get("active", "ephemeral")
    if config.get("profiles", {}).get(active, {}).get("PREFECT_API_URL"):
        return
    from generators.settings import get_settings

    home = get_settings().data_dir / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)  # Prefect makes only the last folder of its home
    os.environ["PREFECT_HOME"] = str(home)


_project_prefect_home()

import flows  # noqa: E402, F401  (offline-safe Prefect defaults before prefect is imported)

# The terminal shows its own step table and errors; Prefect's log lines (and its tracebacks of a failed or
# interrupted run) still reach the API and the UI, but stay off the terminal.
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")

from generators.errors import BoardflowError  # noqa: E402

from . import batch, inspect, ops, run  # noqa: E402
from .common import err_console, fail, server_failure  # noqa: E402

app = typer.Typer(
    help="boardflow: generative-media pipelines on Prefect 3.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.command()(run.plan)
app.command()(run.run)
app.command()(run.demo)
app.command("batch")(batch.batch_command)
app.command()(inspect.costs)
app.command()(inspect.lineage)
app.command(help=ops.SERVER_HELP)(ops.server)
app.command(help=ops.SERVE_HELP)(ops.serve)

generators_app = typer.Typer(help="List, describe and import the generators boardflow knows.", no_args_is_help=True)
generators_app.command("list")(inspect.generators_list)
generators_app.command("show")(inspect.generators_show)
generators_app.command("import")(inspect.generators_import)
app.add_typer(generators_app, name="generators")

blocks_app = typer.Typer(help="Prefect blocks for provider keys and the artifact store.", no_args_is_help=True)
blocks_app.command("register")(ops.blocks_register)
app.add_typer(blocks_app, name="blocks")


def main() -> None:
    try:
        app()
    except BoardflowError as exc:
        _exit_with(exc)
    except Exception as exc:  # a bug or an unexpected outside failure: one line, the traceback on request
        if os.environ.get("BOARDFLOW_DEBUG"):
            raise
        if (told := server_failure(exc)) is not None:  # the Prefect server (or its database) failed mid-run
            _exit_with(told)
        err_console.print(f"[bold red]error:[/] {type(exc).__name__}: {escape(str(exc))[:500]}")
        err_console.print("[yellow]what to do:[/] run again with BOARDFLOW_DEBUG=1 for the traceback, and report it.")
        raise SystemExit(1) from None


def _exit_with(exc: BoardflowError) -> NoReturn:
    """`fail` outside the app: its typer.Exit would not be caught by click here, so exit ourselves."""
    try:
        fail(exc)
    except typer.Exit as stop:
        raise SystemExit(stop.exit_code) from None


if __name__ == "__main__":
    sys.exit(main())
