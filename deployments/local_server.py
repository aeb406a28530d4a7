"""Start and stop a local `prefect server start` (and its workers) as subprocesses, with offline-safe settings."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from generators.errors import ConfigurationError
from generators.media import child_setup

T = TypeVar("T")

# Settings every local server and worker gets: no analytics or phoning home, and a patient client.
OFFLINE_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}


WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_until(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.2,
    ignore: tuple[type[BaseException], ...] = (OSError, httpx.HTTPError),
) -> T:
    """Poll `check` until it returns something truthy; raise TimeoutError naming `what` at the deadline.

    Errors of the `ignore` types count as "not yet" (a server refuses connections until it is up);
    any other error stops the wait at once.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except ignore as exc:
            last_error = exc
        time.sleep(interval)
    why = f" (last error: {last_error})" if last_error else ""
    raise TimeoutError(f"{what} did not happen within {timeout:.0f}s{why}")


def prefect_executable() -> str:
    """The `prefect` command of this interpreter's environment (not whatever is first on PATH)."""
    beside = Path(sys.executable).with_name("prefect")
    found = str(beside) if beside.exists() else shutil.which("prefect")
    if not found:
        raise ConfigurationError(
            "The `prefect` command is not installed in this environment.",
            hint="Run `make install` (or `pip install -e .`) and use the project's .venv.",
        )
    return found


def api_healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def stop_process(proc: subprocess.Popen, grace: float = 10.0, group: bool = True) -> None:
    """SIGTERM the process (its whole group when it leads one), then SIGKILL it when it outlives `grace` seconds."""
    if proc.poll() is not None:
        return
    # A process worker starts each flow run in a process group of its own, which signalling the worker's
    # group misses: note every descendant now, and kill whichever is still alive once the worker is gone.
    descendants = _descendants(proc.pid)

    def send(sig: int) -> None:
        try:
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(timeout=grace)
    for child in descendants:
        with contextlib.suppress(Exception):
            if child.is_running():
                child.kill()


def _descendants(pid: int) -> list:
    """psutil handles on every process under `pid` ([] without psutil, a dev dependency)."""
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:
        return []


@dataclass
class PrefectServer:
    """`prefect server start` on 127.0.0.1 in its own PREFECT_HOME; `with PrefectServer(home) as s:` waits for health.

    Detached (the default) it runs in its own process group with its output in <home>/server.log, so
    stopping it also stops the uvicorn and service children it spawns; `attached=True` is for the CLI.
    """

    home: Path
    host: str = "127.0.0.1"
    port: int = 0
    startup_timeout: float = 120.0
    attached: bool = False  # output to our terminal and our process group (Ctrl-C reaches it), for the CLI
    die_with_parent: bool = False  # killed by the kernel if this process dies uncleanly (a temporary server)
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    children: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home = Path(self.home)
        self.port = self.port or free_port(self.host)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a process that talks to this server (a worker, a CLI call, a flow)."""
        env = {**os.environ, **OFFLINE_ENV, **self.extra_env, **extra}
        env.update(PREFECT_HOME=str(self.home), PREFECT_API_URL=self.api_url, PREFECT_UI_URL=self.url)
        return env

    def server_env(self) -> dict[str, str]:
        """Environment of the `prefect server start` process."""
        env = self.env(PREFECT_SERVER_API_HOST=self.host, PREFECT_SERVER_API_PORT=str(self.port))
        if self.host in WILDCARD_HOSTS and not os.environ.get("PREFECT_UI_API_URL"):
            # The UI's pages call the API from the browser. Left alone, the server tells them it is at
            # http://0.0.0.0:PORT/api, which a browser on another machine cannot reach; a relative /api
            # is the server the page came from, whatever name the browser used.
            env["PREFECT_UI_API_URL"] = "/api"
        return env

    def start(self) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        if not port_is_free(self.host, self.port):
            # Without this, the health check would happily find somebody else's server on that port.
            raise ConfigurationError(
                f"Port {self.port} on {self.host} is already in use.",
                hint="Pick another with --port, or point PREFECT_API_URL at the server already running there.",
            )
        # Prefect's CLI through deployments.database: on SQLite its writers then wait for each other instead
        # of failing with 503 "database is locked" (see that module); on PostgreSQL it is `prefect` itself.
        prefect_executable()  # the check that Prefect is installed, with its hint
        args = [sys.executable, "-m", "deployments.database", "server", "start", "--host", self.host]
        args += ["--port", str(self.port)]
        env = self.server_env()
        if self.attached:
            self.proc = subprocess.Popen([*args, "--analytics-off"], env=env)
        else:
            setup = child_setup() if self.die_with_parent else None
            with open(self.home / "server.log", "ab") as log:
                self.proc = subprocess.Popen(
                    [*args, "--analytics-off"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=setup,
                )
        try:
            wait_until(self._ready, self.startup_timeout, f"Prefect server at {self.api_url}/health")
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ConfigurationError(
                f"`prefect server start` exited with code {self.proc.returncode}.",
                hint=f"Read {self.home / 'server.log'}; the port {self.port} may be taken.",
            )
        return api_healthy(self.api_url)

    def spawn(self, args: list[str], log_name: str, **extra_env: str) -> subprocess.Popen:
        """Start a process against this server (a worker, `boardflow serve`…); it is stopped with the server."""
        with open(self.home / log_name, "ab") as log:
            proc = subprocess.Popen(
                args, env=self.env(**extra_env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.children.append(proc)
        return proc

    def log_tail(self, name: str = "server.log", lines: int = 40) -> str:
        path = self.home / name
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        for child in reversed(self.children):
            stop_process(child)
        self.children.clear()
        if self.proc is not None:
            stop_process(self.proc, group=not self.attached)

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
