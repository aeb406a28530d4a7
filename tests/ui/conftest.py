"""A real `prefect server start` with finished runs on it, and headless Chromium (Debian's) to look at them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployments.local_server import PrefectServer
from deployments.media_server import MediaServer, announce
from generators.storage import LocalStore

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Offline and quiet: no first-run UI, no component or sync traffic, no QUIC; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",  # the playback checks start players without a click
]


@dataclass
class UIRuns:
    server: PrefectServer
    media: MediaServer  # serving the runs' store, announced to them as `boardflow server` does
    runs: dict[str, str]  # what ran → flow run id
    console: str  # what the runs printed: Prefect's "View at" links are console-only (not sent to the API)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's Chromium, which `make test-deps` installs; the UI tests skip (saying why) when it is missing."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: run `make test-deps` as root (apt-get install chromium) to run the UI checks."
        )
    pytest.importorskip("playwright.sync_api", reason="the playwright package is missing: `pip install -e '.[dev]'`")
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def ui_runs(tmp_path_factory, chromium_executable) -> UIRuns:
    """A Prefect server and its media server with a finished small storyboard run and batch run."""
    home = tmp_path_factory.mktemp("ui-prefect-home")
    data = tmp_path_factory.mktemp("ui-data")
    with PrefectServer(home) as server, MediaServer(LocalStore(data / "store")) as media:
        announce(server.api_url, media.url)
        # INFO: the "View at" link the test follows is an INFO line on the run's console.
        env = server.env(
            BOARDFLOW_DATA_DIR=str(data),
            PREFECT_LOGGING_LEVEL="INFO",
            PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="INFO",
        )
        done = subprocess.run(
            [sys.executable, "-m", "tests.ui.make_runs"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"the runs for the UI check failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        line = next(x for x in reversed(done.stdout.splitlines()) if x.startswith("RUNS "))
        yield UIRuns(server, media, json.loads(line.removeprefix("RUNS ")), done.stdout + done.stderr)


@pytest.fixture(scope="module")
def browser(chromium_executable, tmp_path_factory):
    """A fresh headless Chromium profile (nothing cached between runs), 1280 px wide like a laptop screen."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium_executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            env={**os.environ, "HOME": str(tmp_path_factory.mktemp("chromium-home"))},
        )
        try:
            yield context
        finally:
            context.close()
