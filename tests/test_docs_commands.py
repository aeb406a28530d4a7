"""Every shell command in docs/deployments.md, README.md and docs/scale-out.md runs as written, or is listed here
with the reason it cannot run on a test machine.

The commands run in document order, through bash, from the project folder, against the `boardflow server` the
docs start first. A command that keeps running (the server, a worker, `boardflow serve`) is started, checked and
stopped. A command already run (the README repeats the nightly recipe) is not run twice. A command that no rule
below covers fails the test: a new command in the docs needs a check here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from deployments.local_server import PrefectServer, free_port, stop_process, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.servers]

REPO = Path(__file__).resolve().parents[1]
DOCS = ["docs/deployments.md", "README.md", "docs/scale-out.md"]
BUDGET_SECONDS = 900  # the whole walk-through; each command has its own timeout below
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

# Commands that cannot run here, each with the reason (and where what it does is tested instead).
NOT_HERE = {
    r"make install && \. \.venv/bin/activate": "builds the .venv this test already runs in",
    r"make demo": "builds the .venv, then runs the storyboard: tests/test_readme.py runs the tour's storyboard",
    r"make test(-fast)?": "the test suite itself",
    r"make lint": "the linters: CI runs them (.ci/run)",
    r"make bench": "benchmarks: minutes of CPU, run on request (docs/benchmarks.md)",
    r"boardflow batch slideshow \S+ --store-block studio-store": (
        "the example block points at http://minio.internal:9000, which does not exist here; "
        "tests/flows/test_batch.py runs a batch into a store block on a local S3 API"
    ),
    r"export PREFECT_API_DATABASE_CONNECTION_URL=.*": "needs PostgreSQL at db.internal",
    r'boardflow server --host 0\.0\.0\.0 --database "postgresql://[^"]+"': (
        "needs PostgreSQL at db.internal: tests/deployments/test_postgres_server.py runs `boardflow server "
        "--database` against a real PostgreSQL on loopback"
    ),
    r"boardflow generators import (fal|replicate):\S+": (
        "reads the provider's published OpenAPI over the internet: tests/generators/catalogue/test_importer.py "
        "imports real fal and Replicate schema snapshots served by the fake provider server"
    ),
    r"boardflow server --host 0\.0\.0\.0": (
        "serves on every interface of a shared machine; tests/deployments/test_local_server.py checks what "
        "a wildcard host tells the UI"
    ),
    r"export PREFECT_API_URL=http://studio-server:4200/api": (
        "needs a server on another machine (studio-server): tests/deployments/test_machines.py points two "
        "machines' workers at one server by its API URL"
    ),
    r"export (BOARDFLOW_STORE|BOARDFLOW_S3_ENDPOINT_URL|AWS_ACCESS_KEY_ID|BOARDFLOW_DATA_DIR|BOARDFLOW_LOCKS)=.*": (
        "settings for machines with a shared S3 store and Redis: tests/deployments/test_machines.py gives two "
        "workers their own BOARDFLOW_DATA_DIR, one S3 store and one Redis"
    ),
    r'prefect worker start --pool boardflow --name "\$\(hostname\)" --limit 2': (
        "a worker of several machines: tests/deployments/test_machines.py runs two, each with its own data folder"
    ),
    r"boardflow batch slideshow \S+ --on-workers --concurrency 4": (
        "spreads rows over the workers of several machines (studio-server): "
        "tests/deployments/test_batch_on_workers.py runs `boardflow batch --on-workers` on two workers"
    ),
}


@dataclass
class Command:
    doc: str
    section: str
    text: str  # as written: continuation lines and heredocs kept, the trailing comment cut
    comment: str = ""


def doc_commands(doc: str) -> list[Command]:
    """The commands of every ```sh block of `doc`, in order."""
    commands: list[Command] = []
    section, block = "", None
    for line in (REPO / doc).read_text(encoding="utf-8").splitlines():
        if block is None:
            if line.startswith("#"):
                section = line.lstrip("#").strip()
            elif line.strip() == "```sh":
                block = []
            continue
        if line.strip() == "```":
            commands += split_block(doc, section, block)
            block = None
        else:
            block.append(line)
    return commands


def split_block(doc: str, section: str, lines: list[str]) -> list[Command]:
    commands, pending, heredoc = [], [], False
    for line in lines:
        if heredoc:
            pending.append(line)
            heredoc = line.strip() != "EOF"
            if heredoc:
                continue
        else:
            code, _, comment = line.partition("  # ") if "  # " in line else (line, "", "")
            if not pending and not code.strip():
                continue
            pending.append(code.rstrip())
            if "<<'EOF'" in code:
                heredoc = True
                continue
            if code.rstrip().endswith("\\"):
                continue
        head, *rest = pending
        commands.append(Command(doc, section, "\n".join([head.strip(), *rest]), comment.strip()))
        pending = []
    return commands


@dataclass
class Walk:
    """The state of the walk-through: the server the docs start, the processes running, what commands printed."""

    tmp: Path
    env: dict[str, str]
    port: int = 0
    running: dict[str, subprocess.Popen] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = httpx.request(method, f"{self.api_url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response

    def run(self, text: str, timeout: float = 300, env: dict[str, str] | None = None) -> str:
        """Run one command through bash; it must succeed without a traceback. Returns what it printed."""
        done = subprocess.run(
            ["bash", "-c", text], cwd=REPO, env=env or self.env, capture_output=True, text=True, timeout=timeout
        )
        out = done.stdout + done.stderr
        assert done.returncode == 0, f"`{text}` exited {done.returncode}:\n{out[-4000:]}"
        assert "Traceback" not in out, f"`{text}` printed a traceback:\n{out[-4000:]}"
        return out

    def start(self, name: str, text: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start a long-running command in its own process group, its output in a log file."""
        with open(self.tmp / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {text}"], cwd=REPO, env=env or self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.running[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str) -> None:
        proc = self.running.pop(name, None)
        if proc is not None:
            stop_process(proc)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


# -- what each runnable command is checked for --------------------------------------------------------------


def boardflow_server(walk: Walk, cmd: Command) -> None:
    """Started as written, but on a free port (4200 may be taken on a shared machine); it prints the export line."""
    walk.port = free_port()
    env = {k: v for k, v in walk.env.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    walk.start("server", f"{cmd.text} --port {walk.port}", env=env)
    wait_until(lambda: httpx.get(f"{walk.api_url}/health", timeout=2).status_code == 200, 120, "boardflow server")
    wait_until(lambda: f"export PREFECT_API_URL={walk.api_url}" in walk.log("server"), 30, "the export line")
    # Without PREFECT_HOME of the user's, the server's database is the project's (docs/deployments.md, step 1).
    assert (Path(walk.env["BOARDFLOW_DATA_DIR"]) / "prefect-home" / "prefect.db").is_file(), walk.log("server")
    walk.env["PREFECT_API_URL"] = walk.api_url


def export_api_url(walk: Walk, cmd: Command) -> None:
    """The line the server printed; the test exports the server's actual port."""
    assert cmd.text == "export PREFECT_API_URL=http://127.0.0.1:4200/api"
    assert walk.env.get("PREFECT_API_URL") == walk.api_url, "the server is not started yet"


def worker(walk: Walk, cmd: Command) -> None:
    walk.start("worker", cmd.text)

    def online() -> bool:
        workers = walk.api("POST", "/work_pools/boardflow/workers/filter", json={}).json()
        return any(w["status"] == "ONLINE" for w in workers)

    wait_until(online, 90, "the worker coming online")


def watched_run(walk: Walk, cmd: Command) -> None:
    out = walk.run(cmd.text, timeout=600)
    assert "Completed" in out, out[-3000:]


def deployment_ls(walk: Walk, cmd: Command) -> None:
    out = walk.run(cmd.text)
    for name in cmd.comment.split(", "):
        assert name in out, (name, out)


def schedule_ls(walk: Walk, cmd: Command) -> None:
    out = walk.run(cmd.text)
    ids = re.findall(UUID, out)
    assert ids, out
    walk.outputs["schedule_id"] = ids[0]


def schedule_toggle(walk: Walk, cmd: Command) -> None:
    walk.run(cmd.text.replace("<SCHEDULE_ID>", walk.outputs["schedule_id"]))
    deployment = walk.api("GET", "/deployments/name/boardflow-batch/nightly").json()
    active = {s["id"]: s["active"] for s in deployment["schedules"]}
    assert active[walk.outputs["schedule_id"]] is (" resume " in cmd.text), (cmd.text, active)


def serve(walk: Walk, cmd: Command) -> None:
    """On a server of its own: plain `serve` refuses deployments `prefect deploy` bound to the pool (as documented)."""
    only = re.findall(r"--only (\S+)", cmd.text) or ["storyboard", "pipeline", "nightly"]
    with PrefectServer(walk.tmp / f"serve-home-{len(walk.done)}") as fresh:
        env = {**walk.env, "PREFECT_API_URL": fresh.api_url}
        proc = walk.start("serve", cmd.text, env=env)

        def served() -> bool:
            found = httpx.post(f"{fresh.api_url}/deployments/filter", json={}, timeout=10).json()
            assert proc.poll() is None, walk.log("serve")
            return {d["name"] for d in found} == set(only)

        wait_until(served, 120, f"`{cmd.text}` registering {only}")
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        proc.wait(timeout=60)
        walk.running.pop("serve")


def block_ls(walk: Walk, cmd: Command) -> None:
    out = walk.run(cmd.text)
    assert "studio-fal" in out and "studio-store" in out, out


def generators_with_fal_block(walk: Walk, cmd: Command) -> None:
    """The fal generators show "yes" with the block saved, and say why not when no block has that name."""

    def fal_lines(text: str) -> list[str]:
        lines = [line for line in walk.run(text).splitlines() if line.startswith("fal/")]
        assert lines, f"`{text}` listed no fal generator"
        return lines

    assert all(" yes " in f" {line} " for line in fal_lines(cmd.text)), fal_lines(cmd.text)
    nameless = "FAL_KEY_BLOCK=no-such-block boardflow generators list"
    assert all(re.search(r"\bno\b", line) and " yes " not in f" {line} " for line in fal_lines(nameless)), fal_lines(
        nameless
    )


def gcl_ls(walk: Walk, cmd: Command) -> None:
    out = walk.run(cmd.text)
    assert "boardflow-provider-fal" in out and "deployment:" in out, out


def cli_run(walk: Walk, cmd: Command) -> None:
    out = walk.run(cmd.text, timeout=600)
    assert re.search(rf"Prefect run: http://127\.0\.0\.1:{walk.port}/runs/flow-run/{UUID}", out), out[-3000:]


def plain(walk: Walk, cmd: Command) -> None:
    walk.run(cmd.text)


RULES: list[tuple[str, Callable[[Walk, Command], None]]] = [
    (r"boardflow server", boardflow_server),
    (r"export PREFECT_API_URL=http://127\.0\.0\.1:4200/api", export_api_url),
    (r"prefect worker start --pool boardflow", worker),
    (r"prefect deployment run .* --watch.*", watched_run),
    (r"prefect deployment ls", deployment_ls),
    (r"prefect deployment schedule ls 'boardflow-batch/nightly'", schedule_ls),
    (r"prefect deployment schedule (pause|resume) 'boardflow-batch/nightly' <SCHEDULE_ID>", schedule_toggle),
    (r"boardflow serve.*", serve),
    (r"prefect block ls", block_ls),
    (r"FAL_KEY_BLOCK=studio-fal boardflow generators list", generators_with_fal_block),
    (r"prefect gcl ls", gcl_ls),
    (r"boardflow (run|batch) slideshow .*", cli_run),
    (
        r"prefect work-pool create boardflow --type process|prefect deploy --all|prefect deploy --name nightly"
        r"|boardflow blocks register|python - <<'EOF'\nfrom blocks import .*"
        r"|prefect deployment run '[^']+' (-p \S+ ?)+|prefect gcl (create|update|inspect) boardflow-provider-fal.*",
        plain,
    ),
]
# The worker runs the flows of these sections only; the runs later commands create wait for a worker, unrun.
WORKER_SECTIONS = {"4. Start a worker", "5. Trigger runs"}


def tour(cmd: Command) -> bool:
    return cmd.doc == "README.md" and cmd.section == "A 60-second tour"


def rule_for(cmd: Command) -> Callable[[Walk, Command], None] | str:
    """The check of a command, or the reason it is not run here."""
    if tour(cmd):
        return "run by tests/test_readme.py in a fresh folder"
    for pattern, reason in NOT_HERE.items():
        if re.fullmatch(pattern, cmd.text, re.S):
            return reason
    matches = [check for pattern, check in RULES if re.fullmatch(pattern, cmd.text, re.S)]
    assert matches, f"{cmd.doc} ({cmd.section}): no check for `{cmd.text}`; add one to tests/test_docs_commands.py"
    return matches[0]


def all_commands() -> list[Command]:
    return [cmd for doc in DOCS for cmd in doc_commands(doc)]


def test_every_command_in_the_docs_has_a_check_or_a_reason():
    commands = all_commands()
    assert len(commands) > 40, "the docs' command blocks were not found"
    for cmd in commands:
        rule_for(cmd)
    assert any(cmd.text == "prefect deploy --all" for cmd in commands)


def test_the_docs_commands_run_as_written(tmp_path):
    home = tmp_path / "home"  # ~/.prefect of the commands: nothing of the user's profile is read
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")}
    env.update(
        HOME=str(home),
        BOARDFLOW_DATA_DIR=str(tmp_path / "data"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(REPO),
        COLUMNS="200",
    )
    walk = Walk(tmp_path, env)
    deadline = time.monotonic() + BUDGET_SECONDS
    section = ""
    try:
        for cmd in all_commands():
            if cmd.section != section:
                section = cmd.section
                if section not in WORKER_SECTIONS:
                    walk.stop("worker")
            check = rule_for(cmd)
            if isinstance(check, str) or cmd.text in walk.done:
                continue
            assert time.monotonic() < deadline, f"the walk-through took over {BUDGET_SECONDS}s, at `{cmd.text}`"
            check(walk, cmd)
            walk.done.add(cmd.text)
    finally:
        walk.stop_all()
