"""The `boardflow` command: every subcommand wired here, explicitly, from the modules that implement them."""

from __future__ import annotations

import os
import sys

import typer

import flows  # noqa: F401  (offline-safe Prefect defaults before prefect is imported)

# The terminal shows its own live step table; Prefect's INFO lines still reach the API (and the UI).
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")

from generators.errors import BoardflowError  # noqa: E402

from . import batch, inspect, ops, run  # noqa: E402
from .common import fail  # noqa: E402

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

generators_app = typer.Typer(help="List and describe the generators boardflow knows.", no_args_is_help=True)
generators_app.command("list")(inspect.generators_list)
generators_app.command("show")(inspect.generators_show)
app.add_typer(generators_app, name="generators")

blocks_app = typer.Typer(help="Prefect blocks for provider keys and the artifact store.", no_args_is_help=True)
blocks_app.command("register")(ops.blocks_register)
app.add_typer(blocks_app, name="blocks")


def main() -> None:
    try:
        app()
    except BoardflowError as exc:
        fail(exc)


if __name__ == "__main__":
    sys.exit(main())
