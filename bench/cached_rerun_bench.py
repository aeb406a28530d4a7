"""Fully cached re-run: the storyboard cold, then again on the same data folder; wall time as a ratio of the cold run.

Run: .venv/bin/python -m bench.cached_rerun_bench [--scenes 3] [--resolution 640x360] [--reruns 3] [--store s3]

Both go through `run_pipeline` against a `prefect server start` running beside them, each run in a child
process timed from inside (imports excluded). Target: re-run ≤ 0.06 × cold (≤ 0.07 × on S3). Checked, exit 1 if not so:
every step of a re-run is a cache hit, no generator executes (the store — objects, sidecars, result index —
is byte-for-byte and mtime-for-mtime what the cold run left), and $0 is spent. Savings are reported in
dollars (the local generators are free, so $0 here) and in generator seconds not spent again.

Every hit is verified (stat + sidecar fingerprint on disk; one HEAD per artifact with S3's SHA-256 on S3),
so the ratio includes that check. `--store s3` keeps the store in a bucket of moto's S3 server in its own
process on 127.0.0.1 (every object is then read over HTTP, as against a real S3).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.orchestration_bench import base_env, load, prefect_server, run_child, storyboard_params
from bench.store_bench import _start_moto

TARGET_RATIO = {"local": 0.06, "s3": 0.07}  # issue 9 (local) and issue 10 (verified hits on S3)


def snapshot(store: Path) -> dict[str, tuple[int, int]]:
    """Every file of the store with its size and mtime: any generator execution would change this."""
    return {
        str(p.relative_to(store)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in store.rglob("*")
        if p.is_file() and "tmp" not in p.relative_to(store).parts
    }


def s3_snapshot(env: dict[str, str]) -> dict[str, tuple[int, str]]:
    """Every object of the bucket store with its size and ETag: any generator execution would change this."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=env["BOARDFLOW_S3_ENDPOINT_URL"])
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {o["Key"]: (o["Size"], o["ETag"]) for page in pages for o in page.get("Contents", [])}


BUCKET = "cached-rerun-bench"


def main(scenes: int, resolution: str, reruns: int, store: str) -> int:
    params = json.dumps(storyboard_params(scenes, resolution))
    child = ["--child", "server", params]
    moto = None
    with tempfile.TemporaryDirectory(prefix="cached-bench-") as tmp_name:
        tmp = Path(tmp_name)
        extra: dict[str, str] = {}
        if store == "s3":
            creds = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
            os.environ.update(creds)
            moto, endpoint = _start_moto({**os.environ, **creds})
            import boto3

            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
            extra = {**creds, "BOARDFLOW_S3_ENDPOINT_URL": endpoint}
        try:
            with prefect_server(tmp / "server-home") as (api_url, _):
                env = {**base_env(tmp / "client-home"), "PREFECT_API_URL": api_url, **extra}
                warm_env = {**env, "BOARDFLOW_DATA_DIR": str(tmp / "warm-up")}
                if store == "s3":
                    warm_env["BOARDFLOW_STORE"] = f"s3://{BUCKET}/warm-up"
                warm = run_child("bench.orchestration_bench", child, warm_env)
                print(
                    f"warm-up run on a fresh server (registers the flow): {warm['seconds']:.1f} s · {load()}",
                    flush=True,
                )
                env["BOARDFLOW_DATA_DIR"] = str(tmp / "data")
                if store == "s3":
                    env["BOARDFLOW_STORE"] = f"s3://{BUCKET}/data"
                look = (lambda: s3_snapshot(env)) if store == "s3" else (lambda: snapshot(tmp / "data" / "store"))
                cold = run_child("bench.orchestration_bench", child, env)
                print(
                    f"cold run: {cold['seconds']:.1f} s, {cold['steps']} step runs, generators {cold['compute']:.1f} s"
                )
                before = look()
                again = []
                for i in range(reruns):
                    got = run_child("bench.orchestration_bench", child, env)
                    again.append(got)
                    print(
                        f"re-run {i + 1}: {got['seconds']:.2f} s = {got['seconds'] / cold['seconds']:.3f} of cold, "
                        f"{got['cached']}/{got['steps']} from cache, {got['api_retries']} API 503 retries · {load()}",
                        flush=True,
                    )
                after = look()
        finally:
            if moto is not None:
                moto.kill()
    print(f"\nstore: {store}")
    return report(cold, again, before, after, scenes, resolution, TARGET_RATIO[store])


def report(
    cold: dict, again: list[dict], before: dict, after: dict, scenes: int, resolution: str, target: float
) -> int:
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
        f"(target ≤ {target}: {'OK' if median <= target else 'OVER TARGET'}); "
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
    parser.add_argument("--store", choices=["local", "s3"], default="local", help="where the artifact store is")
    args = parser.parse_args()
    sys.exit(main(args.scenes, args.resolution, args.reruns, args.store))
