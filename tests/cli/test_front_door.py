"""The front door: mistakes refused before Prefect starts, a server that is down, Ctrl-C, plain progress, outputs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli.app import app
from tests.flows.kit import Echo

REPO = Path(__file__).resolve().parents[2]
TINY = ["-p", "prompt=a red fox", "-p", "duration=1", "-p", "resolution=320x180", "-p", "image_size=512x512"]


def invoke(*args: str, columns: int = 200):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})


async def flow_run_count() -> int:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await client.count_flow_runs()


def refused(result, *needles: str) -> None:
    """A user mistake: exit 1, one error block that names the place, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "error:" in result.output, result.output
    for needle in needles:
        assert needle in " ".join(result.output.split()), (needle, result.output)


def test_mistakes_are_refused_before_any_flow_run_exists(prefect_api, data_dir, registry, tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({"name": "typo", "steps": {"a": {"generator": "local/procedural-imag"}}}))
    (tmp_path / "bad-column.csv").write_text("prompt,moood\nx,y\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header-only.csv").write_text("prompt\n")
    (tmp_path / "latin1.csv").write_bytes("prompt\ncaf\xe9\n".encode("latin-1"))
    before = asyncio.run(flow_run_count())
    cases = [
        (["run", str(typo)], ["a.generator", "local/procedural-image", "mean"]),
        (["run", "slideshow", "-p", "moood=calm"], ["'moood'", "did you mean 'mood' for 'moood'"]),
        (["run", "storyboard", "-p", "fps=abc"], ["'fps' must be an integer", "'abc'"]),
        (["run", "slideshow", "-p", "duration=nan", "-p", "prompt=x"], ["'duration' must be a finite number"]),
        (["run", "storyboard", "-p", "scenes=@no-such-scenes.yaml"], ["-p scenes=@no-such-scenes.yaml", "no file"]),
        (["batch", "slideshow", str(tmp_path / "missing.csv")], ["No batch CSV at", "missing.csv"]),
        (["batch", "slideshow", str(tmp_path / "bad-column.csv")], ["'moood'", "did you mean 'mood'"]),
        (["batch", "slideshow", str(tmp_path / "empty.csv")], ["empty.csv is empty"]),
        (["batch", "slideshow", str(tmp_path / "header-only.csv")], ["header-only.csv has no data rows"]),
        (["batch", "slideshow", str(tmp_path / "latin1.csv")], ["latin1.csv is not UTF-8"]),
    ]
    for args, needles in cases:
        started = time.monotonic()
        refused(invoke(*args), *needles)
        assert time.monotonic() - started < 30, args
    assert asyncio.run(flow_run_count()) == before, "a refused command left a flow run on the server"


def test_a_scene_without_its_optional_motion_plans(data_dir, registry):
    scenes = yaml.safe_dump([{"prompt": "a hill", "narration": "A hill."}])
    result = invoke("plan", "storyboard", "-p", f"scenes={scenes}")
    assert result.exit_code == 0, result.output


def test_plan_lists_the_parameters_even_when_one_is_missing(data_dir, registry):
    result = invoke("plan", "slideshow")
    assert result.exit_code == 1
    out = result.output
    assert "Parameters of slideshow" in out and "required" in out
    assert "'prompt' is required" in " ".join(out.split())
    row = next(line for line in out.splitlines() if line.startswith("│ duration"))
    assert "number" in row


@pytest.mark.parametrize("command", [["run", "slideshow", *TINY], ["batch", "slideshow", "x.csv"], ["costs"]])
def test_a_server_that_is_down_is_named_with_the_fix(command, data_dir, tmp_path):
    if command[0] == "batch":
        (tmp_path / "x.csv").write_text("prompt\na fox\n")
        command = [*command[:2], str(tmp_path / "x.csv")]
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "cli.app", *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out and "No Prefect server answers at http://127.0.0.1:9/api" in out, out
    assert "boardflow server" in out and len(out.splitlines()) < 10, out


def test_generators_list_fits_80_columns_and_never_cuts_an_id(registry):
    result = invoke("generators", "list", columns=80)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    for gen in registry.names():
        assert any(line.split() and line.split()[0] == gen for line in lines), gen


@pytest.mark.slow
def test_ctrl_c_cancels_the_run_says_what_is_saved_and_the_rerun_resumes(prefect_api, data_dir):
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "COLUMNS": "120", "BOARDFLOW_DATA_DIR": str(data_dir)}
    args = [sys.executable, "-m", "cli.app", "run", "storyboard", "-p", "resolution=320x180", "-p", "fps=24"]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:  # not a terminal: one plain line per event, as it happens
        lines.append(line)
        if " done in " in line or " cached in " in line:
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    out = "".join(lines) + rest
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "Stopped." in out and "Run the same command again to resume" in out, out
    assert lines[0].startswith("starting Prefect… (19 step runs planned)"), lines[:3]
    saved = int(out.split("Stopped. ")[1].split(" of 19")[0])
    assert saved >= 1

    async def state_of_last_run() -> str:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.sorting import FlowRunSort

        async with get_client() as client:
            (run,) = await client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)
            return run.state.type.value

    assert asyncio.run(state_of_last_run()) == "CANCELLED"
    again = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count(": cached in ") >= saved, again.stdout


def test_out_never_overwrites_other_bytes_and_only_copies_verified_store_objects(
    prefect_api, data_dir, registry, tmp_path
):
    registry.register(Echo())
    spec = {
        "name": "outs",
        "params": {"word": {"type": "string", "default": "one"}},
        "steps": {"say": {"generator": "test/echo", "inputs": {"text": "${params.word}"}}},
        "outputs": {
            "../../../../escaped": "${steps.say.text}",
            "stolen": {
                "kind": "text",
                "sha256": "0" * 64,
                "storage_url": "file:///etc/hostname",
                "format": "txt",
                "size_bytes": 1,
                "content": "x",
            },  # fmt: skip
        },
    }
    path = tmp_path / "outs.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "deep" / "out"
    first = invoke("run", str(path), "--out", str(out))
    assert first.exit_code == 0, first.output
    files = sorted(p.name for p in out.iterdir())
    assert files == ["escaped.txt"], files  # one safe name inside --out; /etc/hostname not copied
    assert not (tmp_path / "escaped.txt").exists() and "not copied" in first.output
    assert str((out / "escaped.txt").resolve()) in first.output, "the full path, on one line"

    second = invoke("run", str(path), "-p", "word=two", "--out", str(out))
    assert second.exit_code == 0, second.output
    assert (out / "escaped.txt").read_text() == "one", "the first run's file was overwritten"
    kept = [p for p in out.iterdir() if p.name != "escaped.txt"]
    assert len(kept) == 1 and kept[0].read_text() == "two", kept
    forced = invoke("run", str(path), "-p", "word=two", "--out", str(out), "--force", columns=80)
    assert forced.exit_code == 0 and (out / "escaped.txt").read_text() == "two"
    lines = forced.output.splitlines()  # at 80 columns: the cost table fits, names and paths are whole
    path_lines = [line for line in lines if line.strip() == str((out / "escaped.txt").resolve())]
    assert path_lines, "the output path is on a line of its own, unwrapped"
    assert all(len(line) <= 80 for line in lines if line not in path_lines), max(lines, key=len)
    assert any(line.split()[:2] == ["say", "test/echo"] for line in lines if line.split()), forced.output
