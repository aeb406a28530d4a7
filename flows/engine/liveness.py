"""Crash hygiene: a flow run whose process died (SIGKILL, OOM, power cut) is marked Crashed on the next start.

Prefect marks a run Crashed only from inside the process running it, which a SIGKILL never lets run; its
other mechanism (flow-run heartbeats plus a "zombie" automation on the server) needs a server with the
event triggers running and takes at least a heartbeat period (30 s minimum, 180 s by default) to notice.
So each run holds an flock on `<data>/runs/<flow run id>.run` while its process lives. The kernel drops
the lock when the process dies however it dies, so the next boardflow run on this machine finds an
unlocked file, marks that flow run (its subflow runs, its task runs) Crashed if the server still says it
runs, and removes the scratch folders dead processes left in the temp dir.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    TaskRunFilter,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.states import Crashed

from generators.scratch import remove_dead_scratch
from generators.settings import get_settings

log = logging.getLogger("boardflow")
_UNFINISHED = [StateType.RUNNING, StateType.PENDING]


def runs_dir() -> Path:
    return get_settings().data_dir / "runs"


@contextlib.asynccontextmanager
async def run_hygiene(flow_run_id: str) -> AsyncIterator[None]:
    """Clean up after dead runs, then hold this run's liveness lock until it ends."""
    try:
        await mark_dead_runs_crashed()
        remove_dead_scratch()
    except Exception as exc:  # never fail a run over someone else's leftovers
        log.warning("Could not clean up after earlier killed runs: %s", exc)
    with _alive(flow_run_id):
        yield


@contextlib.contextmanager
def _alive(flow_run_id: str):
    folder = runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".run-")
    path = folder / f"{flow_run_id}.run"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked before it has its name: never seen unlocked
        os.write(fd, json.dumps({"flow_run_id": flow_run_id, "pid": os.getpid(), "host": _host()}).encode())
        os.replace(tmp, path)
        yield
    finally:
        Path(tmp).unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        os.close(fd)


async def mark_dead_runs_crashed() -> list[str]:
    """Mark Crashed every run whose liveness file on this host is no longer locked; their flow run ids."""
    crashed = []
    for path in sorted(runs_dir().glob("*.run")) if runs_dir().is_dir() else []:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue  # its run ended meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # its process is alive
        try:
            info = json.loads(path.read_text(encoding="utf-8") or "{}")
            if info.get("host") not in (None, _host()):
                continue  # a data folder shared with another machine: only that one can tell
            if await _crash(info["flow_run_id"], info.get("pid")):
                crashed.append(info["flow_run_id"])
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return crashed


async def _crash(flow_run_id: str, pid: int | None) -> bool:
    """Crashed for the flow run, its unfinished subflow runs and task runs, if the server still has it running."""
    message = (
        f"The process running this flow run (pid {pid} on {_host()}) was killed; marked Crashed on the next start."
    )
    run_id = UUID(flow_run_id)
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        if run.state is None or run.state.type not in _UNFINISHED:
            return False
        unfinished = FlowRunFilterState(type=FlowRunFilterStateType(any_=_UNFINISHED))
        subflows = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id]), state=unfinished
            )
        )
        ids = [run_id, *(s.id for s in subflows)]
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)),
            task_run_filter=TaskRunFilter(state=TaskRunFilterState(type=TaskRunFilterStateType(any_=_UNFINISHED))),
        )
        for task in tasks:
            await client.set_task_run_state(task.id, Crashed(message=message), force=True)
        for sub in subflows:
            await client.set_flow_run_state(sub.id, Crashed(message=message), force=True)
        await client.set_flow_run_state(run_id, Crashed(message=message), force=True)
    log.warning("Flow run %s was left Running by a killed process; marked it Crashed.", flow_run_id)
    return True


def _host() -> str:
    return socket.gethostname()
