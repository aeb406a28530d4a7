"""What every command shares: the consoles, option types, KEY=VALUE parsing, and how an error is shown."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from flows.pipeline.safe_yaml import CELL_MAX_BYTES, load_yaml
from generators.errors import BoardflowError, ConfigurationError, InputError

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

ParamOpt = Annotated[
    list[str],
    typer.Option("--param", "-p", help="KEY=VALUE (VALUE read as YAML; @file.yaml reads a file). Repeatable."),
]
RefreshOpt = Annotated[bool, typer.Option("--refresh", help="Run every step even when a cached result exists.")]
SpecArg = Annotated[str, typer.Argument(help="Pipeline YAML path, or a shipped pipeline name.")]


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`-p KEY=VALUE` pairs: VALUE read as YAML (bounded, see safe_yaml); `@path` reads VALUE from a file."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"-p {pair!r} is not KEY=VALUE.", hint="Write it as -p name=value, e.g. -p mood=tense.")
        source = f"the value of -p {key}"
        if raw.startswith("@"):
            path = Path(raw[1:])
            source = f"{path} (given as -p {key}=@{path})"
            try:
                raw = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise InputError(f"-p {key}=@{path}: there is no file {path}.", hint="Check the path.") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"-p {key}=@{path}: cannot read it as UTF-8 text ({exc}).") from None
            values[key] = load_yaml(raw, source) if raw.strip() else ""
        else:
            values[key] = load_yaml(raw, source, max_bytes=CELL_MAX_BYTES) if raw else ""
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


def require_api() -> None:
    """When PREFECT_API_URL names a server, it must answer: otherwise say which URL and what to do, before anything
    starts (a flow against a missing server fails only after a long retry loop, with a page of traceback)."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return  # Prefect starts a temporary server in this process
    try:
        ok = httpx.get(f"{url.rstrip('/')}/health", timeout=5.0).status_code == 200
    except httpx.HTTPError:
        ok = False
    if not ok:
        raise ConfigurationError(
            f"No Prefect server answers at {url} (PREFECT_API_URL).",
            hint="Start one with `boardflow server` (it prints the URL to export), or `unset PREFECT_API_URL` to "
            "let boardflow run on a temporary server of its own.",
        )
    # /health answers without the database; /ready asks it (Prefect's readiness check: 503 when it is down).
    try:
        ready = httpx.get(f"{url.rstrip('/')}/ready", timeout=10.0)
    except httpx.HTTPError:
        return  # an older or proxied server without /ready: /health was enough
    if ready.status_code == 503:
        raise ConfigurationError(
            f"The Prefect server at {url} (PREFECT_API_URL) answers, but its database does not ({_message_of(ready)}).",
            hint="Start the server's database (PostgreSQL: the one `boardflow server --database` or "
            "PREFECT_API_DATABASE_CONNECTION_URL names), then run again: finished steps come from the cache.",
        )


def server_failure(exc: BaseException) -> ConfigurationError | None:
    """What to tell the user when the Prefect server failed a call mid-run (a 5xx, or it went away); None for any
    other error. A 5xx is told apart by asking /ready whether the server's database answers."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url or not isinstance(exc, httpx.HTTPError):
        return None
    base = url.rstrip("/")
    try:
        where = str(exc.request.url)
    except RuntimeError:  # an error raised without its request
        where = base
    if not where.startswith(base):
        return None
    call = f"{exc.request.method} {where.removeprefix(base)}"
    again = "then run the same command again: the steps that finished come from the cache."
    if isinstance(exc, httpx.HTTPStatusError):
        if exc.response.status_code < 500:
            return None
        try:
            ready = httpx.get(f"{base}/ready", timeout=10.0)
        except httpx.HTTPError:
            ready = None
        if ready is not None and ready.status_code == 503:
            return ConfigurationError(
                f"The Prefect server at {url} lost its database mid-run ({_message_of(ready)}); it answered "
                f"{exc.response.status_code} to {call}.",
                hint="Start the server's database again (PostgreSQL: the one `boardflow server --database` or "
                f"PREFECT_API_DATABASE_CONNECTION_URL names), {again}",
            )
        return ConfigurationError(
            f"The Prefect server at {url} failed mid-run: it answered {exc.response.status_code} to {call}.",
            hint=f"Read the server's log for the cause; once it answers again, {again}",
        )
    return ConfigurationError(
        f"The Prefect server at {url} stopped answering mid-run ({type(exc).__name__} on {call}).",
        hint=f"Start it again (`boardflow server`), {again}",
    )


def _message_of(response) -> str:
    try:
        return str(response.json().get("message") or response.text)
    except ValueError:
        return response.text[:200]


@contextmanager
def patient_temporary_server() -> Iterator[None]:
    """With no PREFECT_API_URL, a server of boardflow's own for this command, on the same database Prefect's
    temporary one would use (the Prefect home's SQLite), stopped when the command ends.

    Prefect's own temporary server answers about one batch row in two with 503 "database is locked" (the
    subflow's task-run insert) and its client then sleeps 2 s; this one begins its writes IMMEDIATE, so they
    wait for each other instead (deployments/database.py). The kernel kills it if this process dies uncleanly.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    from deployments.local_server import PrefectServer

    # Its log (<Prefect home>/server.log) keeps what the server's loggers pass: this command's terminal quiet
    # (PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=CRITICAL, set in cli/app.py) is not the server's.
    quiet_ui = {"PREFECT_UI_ENABLED": "0", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "DEBUG"}
    server = PrefectServer(Path(PREFECT_HOME.value()), die_with_parent=True, extra_env=quiet_ui)
    err_console.print("[dim]Starting a temporary Prefect server for this batch…[/]")
    try:
        server.start()
    except TimeoutError as exc:
        raise ConfigurationError(
            f"The temporary Prefect server did not start: {exc}.",
            hint=f"Read {server.home / 'server.log'}, or start one with `boardflow server` and export PREFECT_API_URL.",
        ) from None
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield
            finally:
                # Task runs and logs reach the server through these workers: deliver them before it stops.
                EventsWorker.drain_all()
                APILogWorker.drain_all()
    finally:
        server.stop()


def require_services() -> None:
    """The Prefect server (when one is configured) and the shared lock store (when BOARDFLOW_LOCKS names one)
    answer, before anything starts."""
    from flows.engine.locks import check_locks

    require_api()
    check_locks()


class Interrupted(Exception):
    """The user pressed Ctrl-C once, or the process got SIGTERM: the run was stopped cleanly."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def how(self) -> str:
        return "with Ctrl-C" if self.signum == signal.SIGINT else f"by {signal.Signals(self.signum).name}"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def run_interruptible(make: Callable[[], Awaitable[T]]) -> T:
    """`asyncio.run(make())` where a first Ctrl-C or SIGTERM cancels the work (raising Interrupted) and a second
    quits at once."""

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        got: list[int] = []

        def on_signal(signum: int) -> None:
            if got:
                os._exit(128 + signum)
            got.append(signum)
            again = "Ctrl-C" if signum == signal.SIGINT else "a second signal"
            err_console.print(f"\n[yellow]Stopping the run… ({again} to quit at once)[/]")
            task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            return await make()
        except asyncio.CancelledError:
            if got:
                raise Interrupted(got[0]) from None
            raise
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    from prefect.exceptions import TerminationSignal

    try:
        return asyncio.run(main())
    except TerminationSignal as exc:
        # While a flow runs, Prefect's own SIGTERM handler replaces ours and raises this out of the event loop;
        # asyncio.run has cancelled the run's tasks by the time it gets here, so this is the same clean stop.
        raise Interrupted(exc.signal) from None


async def mark_cancelled(flow_run_id: str | None, message: str) -> None:
    """Leave an interrupted run Cancelled on the server (the engine reports a cancelled task as Crashed)."""
    if not flow_run_id:
        return
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    async with get_client() as client:
        await client.set_flow_run_state(flow_run_id, Cancelled(message=message), force=True)
