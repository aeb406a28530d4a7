"""Fully cached re-run: the storyboard cold, then again on the same data folder; wall time as a ratio of the cold run.

Run: .venv/bin/python -m bench.cached_rerun_bench [--scenes 3] [--resolution 640x360] [--reruns 3]

Both go through `run_pipeline` against a `prefect server start` running beside them, each run in a child
process timed from inside (imports excluded). Target: re-run ≤ 0.06 × cold. Checked, exit 1 if not so:
every step of a re-run is a cache hit, no generator executes (the store — objects, sidecars, result index —
is byte-for-byte and mtime-for-mtime what the cold run left), and $0 is spent. Savings are reported in
dollars (the local generators are free, so $0 here) and in generator seconds not spent again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench.orchestration_bench import base_env, load, prefect_server, run_child, storyboard_params

TARGET_RATIO = 0.06


def snapshot(store: Path) -> dict[str, tuple[int, int]]:
    """Every file of the store with its size and mtime: any generator execution would change this."""
    return {
        str(p.relative_to(store)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in store.rglob("*")
        if p.is_file() and "tmp" not in p.relative_to(store).parts
    }


def main(scenes: int, resolution: str, reruns: int) -> int:
    params = json.dumps(storyboard_params(scenes, resolution))
    child = ["--child", "server", params]
    with tempfile.TemporaryDirectory(prefix="cached-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with prefect_server(tmp / "server-home") as (api_url, _):
            env = {**base_env(tmp / "client-home"), "PREFECT_API_URL": api_url}
            warm = run_child("bench.orchestration_bench", child, {**env, "BOARDFLOW_DATA_DIR": str(tmp / "warm-up")})
            print(f"warm-up run on a fresh server (registers the flow): {warm['seconds']:.1f} s · {load()}", flush=True)
            env["BOARDFLOW_DATA_DIR"] = str(tmp / "data")
            cold = run_child("bench.orchestration_bench", child, env)
            print(f"cold run: {cold['seconds']:.1f} s, {cold['steps']} step runs, generators {cold['compute']:.1f} s")
            before = snapshot(tmp / "data" / "store")
            again = []
            for i in range(reruns):
                got = run_child("bench.orchestration_bench", child, env)
                again.append(got)
                print(
                    f"re-run {i + 1}: {got['seconds']:.2f} s = {got['seconds'] / cold['seconds']:.3f} of cold, "
                    f"{got['cached']}/{got['steps']} from cache, {got['api_retries']} API 503 retries · {load()}",
                    flush=True,
                )
            after = snapshot(tmp / "data" / "store")
    return report(cold, again, before, after, scenes, resolution)


def report(cold: dict, again: list[dict], before: dict, after: dict, scenes: int, resolution: str) -> int:
    problems = []
    if any(r["cached"] != r["steps"] or r["steps"] != cold["steps"] for r in again):
        problems.append("a re-run executed a step instead of taking it from the cache")
    if before != after:
        changed = sorted(set(before.items()) ^ set(after.items()))[:5]
        problems.append(f"the store changed during re-runs (a generator ran): {changed}")
    if any(r["compute"] != 0 for r in again):
        problems.append("a re-run recorded generator seconds")
    if any(float(r["totals"]["actual_usd"]) != 0 for r in again):
        problems.append("a re-run spent money")
    ratios = [r["seconds"] / cold["seconds"] for r in again]
    median = statistics.median(ratios)
    print(f"\nStoryboard, {scenes} scenes at {resolution}: fully cached re-run / cold run, {len(again)} re-runs")
    print(
        f"  wall: median {median:.3f}, best {min(ratios):.3f} "
        f"(target ≤ {TARGET_RATIO}: {'OK' if median <= TARGET_RATIO else 'OVER TARGET'}); "
        f"cold {cold['seconds']:.1f} s, re-run median {statistics.median(r['seconds'] for r in again):.2f} s"
    )
    print(
        f"  generator executions in re-runs: {sum(r['steps'] - r['cached'] for r in again)}; "
        f"store files unchanged: {before == after} ({len(after)} files)"
    )
    print(
        f"  spent in re-runs: ${sum(float(r['totals']['actual_usd']) for r in again):.2f}; "
        f"saved per re-run: ${float(again[0]['totals']['saved_usd']):.2f} and {cold['compute']:.1f} generator seconds"
    )
    for problem in problems:
        print(f"  FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--resolution", default="640x360")
    parser.add_argument("--reruns", type=int, default=3)
    args = parser.parse_args()
    sys.exit(main(args.scenes, args.resolution, args.reruns))
