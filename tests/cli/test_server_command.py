"""`boardflow server` starts Prefect and the media server, announces the media URL, and stops both on any signal."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from deployments.local_server import free_port
from flows.reporting.media import MEDIA_URL_VARIABLE

REPO = Path(__file__).resolve().parents[2]


def read_lines(proc: subprocess.Popen) -> queue.SimpleQueue:
    lines: queue.SimpleQueue = queue.SimpleQueue()

    def pump() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_for_line(lines: queue.SimpleQueue, needle: str, seen: list[str], timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=deadline - time.monotonic())
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if needle in line:
            return line
    pytest.fail(f"`boardflow server` never printed {needle!r}:\n{''.join(seen)}")


@pytest.mark.slow
@pytest.mark.servers
@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP", "Ctrl-C"])
def test_server_announces_its_media_server_and_a_signal_stops_everything(how, tmp_path):
    port, media_port = free_port(), free_port()
    env = {
        **os.environ,
        "BOARDFLOW_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "200",
        "PYTHONUNBUFFERED": "1",
    }
    args = ["server", "--port", str(port), "--media-port", str(media_port), "--home", str(tmp_path / "home")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.app", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group, so "Ctrl-C" below reaches the group as a terminal's would
    )
    seen: list[str] = []
    try:
        lines = read_lines(proc)
        media_url = f"http://127.0.0.1:{media_port}"
        wait_for_line(lines, f"Media: {media_url}/objects/<sha256>", seen)
        api = f"http://127.0.0.1:{port}/api"
        assert httpx.get(f"{api}/variables/name/{MEDIA_URL_VARIABLE}").json()["value"] == media_url
        assert httpx.get(f"{media_url}/health").status_code == 200
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "no `prefect server start` child"

        if how == "Ctrl-C":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(getattr(signal, how))  # to boardflow alone, as `kill` or a closed terminal does
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert alive == [], f"still running after {how}: {[p.pid for p in alive]}"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{media_url}/health", timeout=2)
    assert "Traceback" not in "".join(seen) + (proc.stdout.read() if proc.stdout else "")
    if how != "Ctrl-C":  # Ctrl-C reaches the Prefect server too, which may be gone before the variable is
        names = sqlite3.connect(tmp_path / "home" / "prefect.db").execute("select name from variable").fetchall()
        assert (MEDIA_URL_VARIABLE,) not in names, "the media URL outlived the media server"


def test_serve_without_a_server_names_the_port_it_looked_at(data_dir):
    port = free_port()
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "cli.app", "serve"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert f"boardflow server --port {port}" in " ".join(out.split()), out
    assert "4200" not in out and "Traceback" not in out
