"""`boardflow server`, `serve` and `blocks register`: a local Prefect server, served deployments, block types."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from generators.errors import BoardflowError

from .common import console, err_console, fail

SERVER_HELP = (
    "Start a Prefect server (API + UI) with offline-safe settings, and a media server for the artifact store, "
    "and print their URLs.\n\n"
    "Analytics are off and DO_NOT_TRACK is set: nothing leaves the machine. The media server (on 127.0.0.1, "
    "read-only, at --port + 10 unless --media-port says otherwise; 0 turns it off) lets the UI open, play and "
    "download the files runs made: their preview cards link there, and V1 adds a player for final video and audio. "
    "It serves the store of this shell's BOARDFLOW_STORE (or data folder); an S3 store's files are redirects to "
    "presigned URLs. Point flows, workers and `boardflow serve` at the server with the printed "
    "`export PREFECT_API_URL=…`. Ctrl-C, SIGTERM or SIGHUP stops both."
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
    media_port: Annotated[
        int | None,
        typer.Option(help="Port of the media server on 127.0.0.1 (default: --port + 10; 0: no media server)."),
    ] = None,
) -> None:
    """Run `prefect server start` and the media server in the foreground and print where they listen."""
    from deployments.database import ENV, check_postgres, database_url, masked
    from deployments.local_server import PrefectServer

    home = home or _default_home()
    try:
        db = database_url(database)
        version = check_postgres(db) if db else None
    except BoardflowError as exc:
        fail(exc)
    local = PrefectServer(home, host=host, port=port, attached=True, extra_env={ENV: db} if db else {})
    media = None
    with _stopped_by(signal.SIGTERM, signal.SIGHUP):
        try:
            try:
                local.start()
                media = _start_media(local.api_url, port + 10 if media_port is None else media_port)
            except (BoardflowError, TimeoutError) as exc:
                fail(exc)
            where = f"PostgreSQL {version} at {masked(db)}" if db else f"SQLite in {home}"
            console.print(f"Database: {where}", soft_wrap=True)
            _print_where(host, port, media)
            code = local.proc.wait() if local.proc else 1
        except (KeyboardInterrupt, _Stopped):
            code = 0
        finally:
            _shut_down(local, media)
    raise typer.Exit(code)


def _print_where(host: str, port: int, media) -> None:
    from deployments.local_server import WILDCARD_HOSTS

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
    if media is not None:
        console.print(
            f"[bold green]Media:[/] {media.url}/objects/<sha256>  (the store at {media.store.root_url}, "
            "read-only; runs reporting here link their files to it)",
            soft_wrap=True,
        )


class _Stopped(Exception):
    """SIGTERM or SIGHUP arrived: stop like Ctrl-C does."""


@contextlib.contextmanager
def _stopped_by(*signals: signal.Signals):
    """Turn `signals` into _Stopped in the main thread while the block runs, so the cleanup after it runs too."""

    def stop(signum, frame):
        raise _Stopped(signal.Signals(signum).name)

    before = {sig: signal.signal(sig, stop) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _start_media(api_url: str, media_port: int):
    """The media server on 127.0.0.1 announced to runs (or, with port 0, the announcement removed)."""
    import httpx

    from deployments.media_server import MediaServer, announce
    from generators.storage import open_store

    media = MediaServer(open_store(), port=media_port).start() if media_port else None
    try:
        announce(api_url, media.url if media else None)
    except httpx.HTTPError as exc:
        if media is not None:
            media.stop()
        raise BoardflowError(
            f"Could not tell the Prefect server at {api_url} where the media server is: {exc}.",
            hint="Read the server's output above; start again, or with --media-port 0 to go without media links.",
        ) from exc
    return media


def _shut_down(local, media) -> None:
    """Withdraw the media URL, stop the media server and the Prefect server; further signals wait until done."""
    import httpx

    from deployments.media_server import announce

    quiet = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        if media is not None:
            with contextlib.suppress(httpx.HTTPError):  # the server may be going already: runs then see no URL
                announce(local.api_url, None, timeout=2.0)
            media.stop()
        local.stop()  # our child: it may have had the same Ctrl-C, but a SIGTERM or SIGHUP reached only us
    finally:
        for sig, handler in quiet.items():
            signal.signal(sig, handler)


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
