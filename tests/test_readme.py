"""The README's 60-second tour works as written: every `boardflow` command in it, run in a fresh folder."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def tour_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## A 60-second tour\s+```sh\n(.*?)```", text, re.S)
    assert block, "the README has no tour"
    commands = []
    for line in block[1].splitlines():
        line = line.split(" # ")[0].strip()
        if line.startswith("boardflow "):
            commands.append(shlex.split(line)[1:])
    return commands


def test_the_tour_lists_the_commands_a_newcomer_needs():
    names = {c[0] for c in tour_commands()}
    assert {"generators", "plan", "run", "lineage", "costs"} <= names


@pytest.mark.slow
def test_every_tour_command_runs_in_a_fresh_folder(tmp_path):
    (tmp_path / "pipelines").symlink_to(REPO / "pipelines")  # the tour's relative paths, as in a clone
    env = {k: v for k, v in os.environ.items() if k not in ("BOARDFLOW_DATA_DIR", "PREFECT_HOME")}
    env.update(COLUMNS="120", PYTHONPATH=str(REPO))
    for args in tour_commands():
        done = subprocess.run(
            [sys.executable, "-m", "cli.app", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
        )
        out = done.stdout + done.stderr
        assert done.returncode == 0, (args, out[-3000:])
        assert "Traceback" not in out, (args, out[-3000:])
    assert (tmp_path / "out" / "storyboard.mp4").stat().st_size > 100_000
    assert (tmp_path / ".boardflow" / "prefect-home").is_dir(), "runs were kept outside the project"
