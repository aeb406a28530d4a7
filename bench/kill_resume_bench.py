"""Kill a storyboard run with SIGKILL half-way, run it again: finished steps come from the cache, none is made twice.

Run: .venv/bin/python -m bench.kill_resume_bench [--scenes 4] [--resolution 640x360]

Against a `prefect server start` running beside it (started here). The first run is a child process in its
own process group; the bench watches the result index (`<store>/results/*.json`, one file per finished
step) and SIGKILLs the whole group (Python and its ffmpeg) once half of the step runs have finished.
The second run, a new process on the same data folder, must then:
- take exactly the steps finished before the kill from the cache (cost records say cached) and execute
  exactly the rest;
- make nothing twice: no artifact of a step finished before the kill is stored again (each sidecar lists
  the flow runs that stored it), and no step executes more than once in the second run;
- finish at all: a SIGKILLed step leaves its cache lock behind, which must not block its re-run.
Exit 1 if any of that fails.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.orchestration_bench import RESULT_MARK, base_env, load, prefect_server, storyboard_params


def finished_results(store: Path) -> set[str]:
    folder = store / "results"
    return {p.stem for p in folder.glob("*.json")} if folder.exists() else set()


def kill_half_way(cmd: list[str], env: dict[str, str], store: Path, total: int, deadline_s: float) -> set[str]:
    """Start the run, SIGKILL it (with its children) when half the steps are done; the cache keys done by then."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + deadline_s
    try:
        while len(finished_results(store)) < total / 2:
            if proc.poll() is not None:
                raise RuntimeError(f"the run ended (exit {proc.returncode}) before half of it was done")
            if time.monotonic() > deadline:
                raise TimeoutError(f"half of the steps were not done after {deadline_s:.0f} s")
            time.sleep(0.05)  # the poll interval: killing sooner or later than "half" by one step is fine
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return finished_results(store)  # read after the kill: a step may have finished in the last instant


def sidecars(store: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (store / "objects").rglob("*.json")}


def main(scenes: int, resolution: str) -> int:
    params = storyboard_params(scenes, resolution)
    total = 4 * scenes + 3  # narration, image, clip, narrated per scene; cut, music, final
    cmd = [sys.executable, "-m", "bench.orchestration_bench", "--child", "server", json.dumps(params)]
    with tempfile.TemporaryDirectory(prefix="kill-bench-") as tmp_name:
        tmp = Path(tmp_name)
        store = tmp / "data" / "store"
        with prefect_server(tmp / "server-home") as (api_url, _):
            env = {**base_env(tmp / "client-home"), "PREFECT_API_URL": api_url, "BOARDFLOW_DATA_DIR": str(tmp / "data")}
            started = time.perf_counter()
            done_before = kill_half_way(cmd, env, store, total, deadline_s=900)
            killed_after = time.perf_counter() - started
            print(f"killed after {killed_after:.1f} s with {len(done_before)}/{total} steps finished · {load()}")
            stale_locks = len(list((tmp / "data" / "locks").glob("*.lock")))
            made_before = {sha: set(meta.get("runs", [])) for sha, meta in sidecars(store).items()}
            indexed_before = {key: json.loads((store / "results" / f"{key}.json").read_text()) for key in done_before}

            second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
            if second.returncode:
                print(f"the second run failed:\n{second.stderr[-4000:]}")
                return 1
            line = next(ln for ln in second.stdout.splitlines() if ln.startswith(RESULT_MARK))
            result = json.loads(line.removeprefix(RESULT_MARK))
            made_after = {sha: set(meta.get("runs", [])) for sha, meta in sidecars(store).items()}
    print(f"second run: {result['seconds']:.1f} s, {result['cached']}/{result['steps']} step runs from the cache")
    return report(result, indexed_before, made_before, made_after, total, stale_locks)


def report(result: dict, indexed_before: dict, made_before: dict, made_after: dict, total: int, locks: int) -> int:
    problems = []
    done = len(indexed_before)
    if result["steps"] != total:
        problems.append(f"the second run recorded {result['steps']} step runs, not {total}")
    if result["cached"] != done:
        problems.append(f"{result['cached']} steps came from the cache, but {done} had finished before the kill")
    executed = result["steps"] - result["cached"]
    finished_arts = {
        art["sha256"]
        for res in indexed_before.values()
        for value in res["outputs"].values()
        for art in (value if isinstance(value, list) else [value])
        if isinstance(art, dict) and "sha256" in art
    }
    made_twice = sorted(sha[:12] for sha in finished_arts if made_after.get(sha) != made_before.get(sha))
    if made_twice:
        problems.append(f"artifacts of steps finished before the kill were stored again: {made_twice}")
    redone = [sha for sha, runs in made_before.items() if sha not in finished_arts and made_after.get(sha) != runs]
    print(f"\nSIGKILL half-way, then run again ({total} step runs):")
    print(f"  finished before the kill: {done}; from the cache in the second run: {result['cached']}")
    print(f"  executed in the second run: {executed} (= {total} - {done}: {executed == total - done})")
    print(f"  artifacts of finished steps stored again: {len(made_twice)} of {len(finished_arts)}")
    print(f"  artifacts of steps cut off by the kill, made again: {len(redone)} (their work was lost with the process)")
    print(f"  cache locks left behind by the killed run: {locks} (broken, since their holder is gone)")
    for problem in problems:
        print(f"  FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--resolution", default="640x360")
    args = parser.parse_args()
    sys.exit(main(args.scenes, args.resolution))
