"""A run killed with SIGKILL: its ffmpeg dies with it, and the next start marks it Crashed and removes its scratch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

from tests.flows.kit import COUNTER_ENV

REPO = Path(__file__).resolve().parents[2]


def children(pid: int, name: str) -> list[int]:
    """Live processes whose parent is `pid` and whose command name contains `name` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        comm, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and name in comm and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(ok, deadline_s: float, poll_s: float = 0.1):
    """Poll `ok()` until it is truthy or the deadline passes; its last value."""
    deadline = time.monotonic() + deadline_s
    while not (value := ok()):
        if time.monotonic() > deadline:
            return value
        time.sleep(poll_s)
    return value


async def flow_run_named(name: str):
    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.slow
async def test_a_sigkilled_run_leaves_no_child_no_running_state_and_no_scratch(prefect_api, data_dir, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    counter = tmp_path / "executions.txt"
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "BOARDFLOW_DATA_DIR": str(data_dir),
        "TMPDIR": str(scratch),
        COUNTER_ENV: str(counter),
    }
    name = f"kill-me-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "tests.flows.run_killable_pipeline"]
    run = subprocess.Popen([*cmd, name, "long"], cwd=REPO, env=env, start_new_session=True, stderr=subprocess.PIPE)
    live_folder = scratch / f"boardflow-{os.getpid()}-live"  # a live process's scratch: never removed
    live_folder.mkdir()
    try:
        started = wait_for(
            lambda: (
                run.poll() is None
                and counter.exists()
                and "test/slow hold" in counter.read_text()
                and children(run.pid, "ffmpeg")
            ),
            deadline_s=180,
        )
        assert started, f"the run never got both steps going (exit {run.poll()}): {run.stderr.read()[-3000:]!r}"
        ffmpeg = started
        assert (await flow_run_named(name)).state.is_running()
        run.kill()  # SIGKILL to the Python process alone, as the OOM killer would send it
        run.wait(timeout=30)

        wait_for(lambda: not any(alive(p) for p in ffmpeg), deadline_s=10)
        survivors = [p for p in ffmpeg if alive(p)]
        folders = sorted(p.name for p in scratch.glob(f"boardflow-{run.pid}-*"))
        next_start = subprocess.run(
            [*cmd, f"{name}-next", "quick"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
        )
        assert next_start.returncode == 0, next_start.stderr[-3000:]
        state = (await flow_run_named(name)).state
        left = sorted(p.name for p in scratch.glob("boardflow-*"))
        outcome = {
            "ffmpeg outliving the killed run": len(survivors),
            "killed run's state after the next start": state.name,
            "scratch folders of the dead run after the next start": [f for f in left if f != live_folder.name],
        }
        assert outcome == {
            "ffmpeg outliving the killed run": 0,
            "killed run's state after the next start": "Crashed",
            "scratch folders of the dead run after the next start": [],
        }, f"{outcome} (dead run's folders right after the kill: {folders})"
        assert live_folder.is_dir(), "the scratch folder of a live process was removed"
        assert "was killed" in (state.message or ""), state.message
    finally:
        try:
            os.killpg(run.pid, signal.SIGKILL)  # whatever is left of the run's group (its ffmpeg, before the fix)
        except ProcessLookupError:
            pass
        run.wait(timeout=30)
