"""Orchestration overhead: the storyboard through Prefect (`run_pipeline`) vs the same generator calls made directly.

Run: .venv/bin/python -m bench.orchestration_bench [--scenes 3] [--rounds 2] [--resolution 640x360]

Every measured run is a fresh child process with a fresh data folder (no run can hit another's cache),
timed from inside the child, imports excluded:
- direct: the pipeline's own scheduler (dependencies, for_each fan-out, per-provider limits, same order)
  with each step a plain `generator.run` in a GeneratorContext — no Prefect at all;
- server: `run_pipeline` against a `prefect server start` running beside it (target ≤ 1.25 × direct);
- ephemeral: `run_pipeline` with no server configured, so Prefect starts a temporary one in the child;
  that start is timed apart (a health check before the flow) and the ratio is shown with and without it.
Each round rotates the order of the three, so a load that rises or falls over time favours none.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.10
RESULT_MARK = "RESULT "
SCENES = [
    {"prompt": "a lighthouse on a cliff at dawn, warm orange sky", "narration": "At dawn the lighthouse keeps watch."},
    {"prompt": "a fishing village with blue houses in morning mist", "narration": "Below, the village wakes."},
    {"prompt": "a forest path with golden light through tall trees", "narration": "Inland, a path leads to the hills."},
    {"prompt": "purple mountains under a starry night sky", "narration": "At night the stars come out."},
]


def storyboard_params(scenes: int, resolution: str, fps: int = 24) -> dict[str, Any]:
    motions = ["zoom-in", "pan-right", "pan-left", "zoom-out"]
    chosen = [{**s, "motion": motions[i % 4]} for i, s in enumerate((SCENES * 4)[:scenes])]
    return {"scenes": chosen, "resolution": resolution, "fps": fps}


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# -- child side -------------------------------------------------------------------------------------------
async def run_direct(params: dict[str, Any]) -> dict[str, Any]:
    from bench.own_work import run_direct as direct
    from flows.storyboard import load_spec
    from generators.registry import get_registry
    from generators.storage import open_store

    spec, _, _ = load_spec(), get_registry(), open_store()  # imports and first-use costs, before the clock
    started, cpu = time.perf_counter(), cpu_seconds()
    executor = await direct(spec, params)
    return {
        "seconds": time.perf_counter() - started,
        "cpu": cpu_seconds() - cpu,
        "steps": len(executor.compute),
        "compute": sum(executor.compute),
    }


async def run_prefect(params: dict[str, Any], ephemeral: bool) -> dict[str, Any]:
    # As `boardflow run` does (its pre-flight plans before Prefect starts) and as run_direct does: the spec and
    # the generator registry (which imports every generator module) are loaded before the clock starts.
    # Prefect imports FastAPI's encoder lazily on a process's first flow call (`Flow.serialize_parameters`): an
    # import like the others, paid once per process, so it is excluded too (run_direct never imports it).
    import fastapi.encoders  # noqa: F401
    from prefect.client.orchestration import get_client

    from flows.pipeline import run_pipeline
    from flows.storyboard import load_spec
    from generators.registry import get_registry

    spec = load_spec()
    get_registry()
    retries = count_api_retries()
    started = time.perf_counter()
    async with get_client() as client:  # with no server configured, this starts the temporary one
        if await client.api_healthcheck() is not None:
            raise SystemExit("the Prefect API is not healthy")
    startup = time.perf_counter() - started if ephemeral else 0.0
    started, cpu = time.perf_counter(), cpu_seconds()
    result = (await run_pipeline(spec=spec, params=params)).model_dump(mode="json")
    seconds = time.perf_counter() - started
    records = result["records"]
    return {
        "seconds": seconds,
        "cpu": cpu_seconds() - cpu,
        "startup": startup,
        "steps": len(records),
        "cached": sum(r["cached"] for r in records),
        "compute": sum(r["compute_seconds"] for r in records),
        "api_retries": len(retries),
        "totals": result["totals"],
        "remade": {r["step"]: r["remade"] for r in records if r.get("remade")},
        "outputs": result["outputs"],
    }


def count_api_retries() -> list[str]:
    """Collects the Prefect client's "retryable status code" notes (a busy SQLite server answers 503)."""
    import logging

    seen: list[str] = []

    class Counter(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "retryable status code" in record.getMessage():
                seen.append(record.getMessage())

    logger = logging.getLogger("prefect.client")
    logger.setLevel(logging.DEBUG)  # the notes are DEBUG; our handler alone sees them (PREFECT_LOGGING_LEVEL stays)
    logger.addHandler(Counter(logging.DEBUG))
    return seen


def child_main(mode: str, params_json: str) -> None:
    import flows  # noqa: F401  (offline Prefect defaults before prefect is imported)

    params = json.loads(params_json)
    run = run_direct(params) if mode == "direct" else run_prefect(params, ephemeral=mode == "ephemeral")
    print(RESULT_MARK + json.dumps(asyncio.run(run)), flush=True)


# -- parent side ------------------------------------------------------------------------------------------
def base_env(prefect_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "BOARDFLOW_STORE")}
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
    )
    return env


def run_child(module: str, args: list[str], env: dict[str, str], timeout: float = 1800) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", module, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if done.returncode or not lines:
        raise RuntimeError(f"{module} {args[:2]} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(lines[-1].removeprefix(RESULT_MARK))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def prefect_server(home: Path, deadline_seconds: float = 180) -> Iterator[tuple[str, int]]:
    """`prefect server start` on a free loopback port with its own PREFECT_HOME; yields (API URL, pid) once healthy."""
    import httpx

    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "server.log").open("wb")
    prefect = Path(sys.executable).with_name("prefect")
    proc = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=base_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so the uvicorn worker it starts stops with it
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + deadline_seconds
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited with {proc.returncode}; see {home / 'server.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"prefect server not healthy after {deadline_seconds:.0f} s")
            time.sleep(0.25)
        yield url, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and everything under it (the server and its uvicorn worker)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def main(scenes: int, rounds: int, resolution: str) -> None:
    params = json.dumps(storyboard_params(scenes, resolution))
    me = "bench.orchestration_bench"
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        times: dict[str, list[dict]] = {"direct": [], "server": [], "ephemeral": []}
        ephemeral_home = tmp / "ephemeral-home"
        print(f"{load()} · starting prefect server and creating the ephemeral database…", flush=True)
        # The first ephemeral start also creates and migrates its database; users pay that once, so we do it here.
        env = {**base_env(ephemeral_home), "BOARDFLOW_DATA_DIR": str(tmp / "data-warm-up")}
        warm = run_child(me, ["--child", "ephemeral", json.dumps(storyboard_params(2, "320x180"))], env)
        print(f"warm-up ephemeral run: server start {warm['startup']:.1f} s, flow {warm['seconds']:.1f} s", flush=True)
        with prefect_server(tmp / "server-home") as (api_url, server_pid):
            # A server in use has its flow registered and its services settled; a fresh one has neither yet.
            env = {**base_env(tmp / "client-home-warm-up"), "BOARDFLOW_DATA_DIR": str(tmp / "data-warm-up-server")}
            env["PREFECT_API_URL"] = api_url
            warm = run_child(me, ["--child", "server", json.dumps(storyboard_params(2, "320x180"))], env)
            print(f"warm-up run on the server: flow {warm['seconds']:.1f} s", flush=True)
            order = ["direct", "server", "ephemeral"]
            for i in range(rounds):
                for mode in order[i % 3 :] + order[: i % 3]:
                    env = base_env(ephemeral_home if mode == "ephemeral" else tmp / f"client-home-{mode}")
                    env["BOARDFLOW_DATA_DIR"] = str(tmp / f"data-{mode}-{i}")
                    if mode == "server":
                        env["PREFECT_API_URL"] = api_url
                    server_cpu = tree_cpu_seconds(server_pid)
                    got = run_child(me, ["--child", mode, params], env)
                    if mode == "server":  # the server's work for this run competes for the same cores
                        got["server_cpu"] = tree_cpu_seconds(server_pid) - server_cpu
                    times[mode].append(got)
                    extra = f" (+ server start {got['startup']:.1f} s)" if mode == "ephemeral" else ""
                    if mode != "direct":
                        extra += f", {got['api_retries']} API 503 retries"
                    if mode == "server":
                        extra += f", server {got['server_cpu']:.1f} s CPU"
                    print(
                        f"round {i + 1} {mode:9} {got['seconds']:6.1f} s wall, {got['cpu']:5.1f} s CPU in the run's "
                        f"process{extra}; generators {got['compute']:.1f} s · {load()}",
                        flush=True,
                    )
        report(times, scenes, resolution, rounds)


def report(times: dict[str, list[dict]], scenes: int, resolution: str, rounds: int) -> None:
    """Ratios paired within each round (the load of that minute weighs on both sides), then median and best."""
    direct, server, eph = times["direct"], times["server"], times["ephemeral"]
    print(f"\nStoryboard, {scenes} scenes at {resolution} @ 24 fps ({direct[0]['steps']} step runs), {rounds} round(s)")
    ratios = {
        "with a server": [s["seconds"] / d["seconds"] for s, d in zip(server, direct, strict=True)],
        "ephemeral": [e["seconds"] / d["seconds"] for e, d in zip(eph, direct, strict=True)],
        "ephemeral incl. its start": [
            (e["seconds"] + e["startup"]) / d["seconds"] for e, d in zip(eph, direct, strict=True)
        ],
    }
    for name, values in ratios.items():
        target = f"   (target ≤ {TARGET_RATIO}: {'OK' if statistics.median(values) <= TARGET_RATIO else 'OVER TARGET'})"
        print(
            f"  wall, {name:26} / direct: median {statistics.median(values):.2f}x, best {min(values):.2f}x"
            + (target if name == "with a server" else "")
        )
    cpu = [(s["cpu"] + s["server_cpu"]) / d["cpu"] for s, d in zip(server, direct, strict=True)]
    print(f"  CPU, run + server / direct: median {statistics.median(cpu):.2f}x (direct {direct[0]['cpu']:.1f} s)")
    print(
        f"  API calls retried after a 503 (SQLite busy; ~2 s each): {sum(s['api_retries'] for s in server)} "
        f"in {rounds} server runs, {sum(e['api_retries'] for e in eph)} in {rounds} ephemeral runs"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=3, help="Scenes in the storyboard (2–4 suit this bench).")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--resolution", default="640x360")
    parser.add_argument("--child", choices=["direct", "server", "ephemeral"], help=argparse.SUPPRESS)
    parser.add_argument("params", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.params)
    else:
        main(args.scenes, args.rounds, args.resolution)
