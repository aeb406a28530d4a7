"""Shared bits of the deployment tests: where the project is, its work pool, and `prefect` CLI calls."""

from __future__ import annotations

import subprocess
from pathlib import Path

from deployments.local_server import PrefectServer, prefect_executable
from deployments.serve import deployment_specs

ROOT = Path(__file__).resolve().parents[2]
POOL = deployment_specs(names=["pipeline"])[0]["work_pool"]["name"]  # the process pool of prefect.yaml


def run_cli(server: PrefectServer, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """A `prefect` CLI call against the server, from the project folder (where prefect.yaml lives)."""
    done = subprocess.run(
        [prefect_executable(), "--no-prompt", *args], cwd=ROOT, env=server.env(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done
