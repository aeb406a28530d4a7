"""`boardflow server`, `serve` and `blocks register`: a local Prefect server, served deployments, block types."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from generators.errors import BoardflowError

from .common import console, err_console, fail

SERVER_HELP = (
    "Start a Prefect server (API + UI) with offline-safe settings and print its URLs.\n\n"
    "Analytics are off and DO_NOT_TRACK is set: nothing leaves the machine. The media previews in the UI are "
    "inline images inside each run's artifacts, so nothing else needs to run beside the server. Point flows, "
    "workers and `boardflow serve` at it with the printed `export PREFECT_API_URL=…`. Stop it with Ctrl-C."
)
SERVE_HELP = (
    "Serve the deployments of prefect.yaml from this process, with their schedules, until Ctrl-C.\n\n"
    "No work pool or worker is needed: this process registers the deployments (same names, parameters, tags, "
    "schedules and concurrency limits as `prefect deploy --all`) and runs their flow runs itself. It needs a "
    "running Prefect server at PREFECT_API_URL (start one with `boardflow server`): without one, Prefect runs "
    "flows on a temporary in-process API, and that cannot run schedules."
)


def server(
    host: Annotated[str, typer.Option(help="Address to listen on. 0.0.0.0 lets other machines' workers connect.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port of the API and the UI.")] = 4200,
    home: Annotated[
        Path | None,
        typer.Option(help="PREFECT_HOME for the server's database and settings (default: <data folder>/prefect-home)."),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL for the server's database: postgresql://USER:PASSWORD@HOST:5432/DATABASE (default: "
            "PREFECT_API_DATABASE_CONNECTION_URL, else SQLite in the home). Checked, and pg_trgm enabled, first."
        ),
    ] = None,
) -> None:
    """Run `prefect server start` in the foreground and print where it listens."""
    from deployments.database import ENV, check_postgres, database_url, masked
    from deployments.local_server import WILDCARD_HOSTS, PrefectServer

    home = home or _default_home()
    try:
        db = database_url(database)
        version = check_postgres(db) if db else None
    except BoardflowError as exc:
        fail(exc)
    local = PrefectServer(home, host=host, port=port, attached=True, extra_env={ENV: db} if db else {})
    try:
        local.start()
    except (BoardflowError, TimeoutError) as exc:
        fail(exc)
    where = f"PostgreSQL {version} at {masked(db)}" if db else f"SQLite in {home}"
    console.print(f"Database: {where}", soft_wrap=True)
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
    console.print(f"[bold green]Prefect UI:[/] http://{shown}:{port}/  (V2; the run links in flow logs open V1)")
    console.print(
        f"Point boardflow and workers at it:  [bold]export PREFECT_API_URL=http://{shown}:{port}/api[/]", soft_wrap=True
    )
    if host in WILDCARD_HOSTS:
        console.print(
            f"From other machines use this machine's name or address instead of {shown}, "
            f"e.g. http://{socket.gethostname()}:{port}/ and http://{socket.gethostname()}:{port}/api",
            soft_wrap=True,
        )
    try:
        code = local.proc.wait()
    except KeyboardInterrupt:
        local.stop()  # the server got the same Ctrl-C; make sure it is gone before we return
        code = 0
    raise typer.Exit(code)


def _default_home() -> Path:
    from prefect.settings import PREFECT_HOME

    return Path(PREFECT_HOME.value())


def serve(
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Serve just this prefect.yaml deployment. Repeatable.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many flow runs at once in this process.")] = None,
    replace: Annotated[
        bool, typer.Option(help="Take over deployments of the same name that `prefect deploy` bound to a work pool.")
    ] = False,
) -> None:
    """Serve prefect.yaml's deployments here (see SERVE_HELP)."""
    from deployments.serve import serve_deployments

    try:
        serve_deployments(only or None, limit, replace)
    except BoardflowError as exc:
        fail(exc)


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
