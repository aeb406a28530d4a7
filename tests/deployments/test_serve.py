"""`boardflow serve`: refuses without a server (and says why), asks before taking over pool deployments, runs flows."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from deployments.fanout import DEPLOYMENT, run_result, submit_rows, wait_for_runs
from deployments.local_server import PrefectServer, stop_process, wait_until
from generators.media import probe
from tests.deployments.kit import ROOT, deployment_or_none, on, run_cli

BOARDFLOW = [str(Path(sys.executable).with_name("boardflow"))]  # the installed command
ROW = {"prompt": "a lighthouse at dawn", "duration": 2.0, "image_size": "512x512", "resolution": "320x180", "fps": 24}


def boardflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*BOARDFLOW, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_serve_without_a_server_says_how_to_start_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path)  # no profile that could name a server
    done = boardflow("serve", env=env)
    assert done.returncode == 1
    said = " ".join(done.stderr.split())
    assert "PREFECT_API_URL is not set" in said
    assert "boardflow server" in said and "cannot run schedules" in said


@pytest.mark.slow
def test_serve_takes_over_pool_deployments_when_asked_and_runs_them(deployed: PrefectServer, tmp_path):
    server = deployed
    data_dir = tmp_path / "data"
    refused = boardflow("serve", env=server.env(BOARDFLOW_DATA_DIR=str(data_dir)))
    assert refused.returncode == 1
    said = " ".join(refused.stderr.split())
    assert "already run on a work pool" in said and "--replace" in said

    serving = server.spawn([*BOARDFLOW, "serve", "--replace", "--only", "pipeline"], "serve.log",
                           BOARDFLOW_DATA_DIR=str(data_dir), PREFECT_LOGGING_LEVEL="INFO")  # fmt: skip
    try:

        def served() -> bool:
            deployment = on(server, lambda c: deployment_or_none(c, DEPLOYMENT))
            return deployment is not None and deployment.work_pool_name is None

        wait_until(served, 120, "`boardflow serve` registering the pipeline deployment")
        ids = on(server, lambda c: submit_rows(DEPLOYMENT, "slideshow", [ROW], client=c))
        (run,) = on(server, lambda c: wait_for_runs(ids, timeout=240, client=c))
        assert run.state.is_completed(), (run.state.message, server.log_tail("serve.log"))
        assert run.work_pool_name is None and "prefect.worker.name" not in run.labels
        video = asyncio.run(run_result(run)).model_dump(mode="json")["outputs"]["video"]
        path = Path(unquote(urlparse(video["storage_url"]).path))
        assert path.is_relative_to(data_dir), "the served run did not use the serving process's data folder"
        media = probe(path, "video")
        assert (media.width, media.height) == (320, 180) and media.duration == pytest.approx(2.0, abs=0.1)
    finally:
        stop_process(serving)
        run_cli(server, "deploy", "--name", "pipeline")  # back on the work pool, as the other tests expect
