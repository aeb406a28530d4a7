"""Duplicate executions across two "machines" sharing one S3 store, with and without Redis cache locks.

Run: .venv/bin/python -m bench.duplicates_bench [--rounds 1] [--resolution 320x180]

A machine is a `boardflow run storyboard --json` process with a data folder of its own (its own Prefect
cache records and file locks). Both machines share a Prefect server (`prefect server start`), one S3 API
(moto's server on 127.0.0.1) as BOARDFLOW_STORE, and, in the "redis" mode, one Redis as BOARDFLOW_LOCKS.
Each round starts both runs of the same pipeline with the same params at the same moment, on a fresh store
prefix (and an empty Redis), so neither finds the other's earlier work. Executions are counted from each
run's cost records: a step label (`clip[2]`) that is not `cached` in both runs was made twice.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BUCKET = "duplicates-bench"
MODES = ("file locks", "redis")


@contextmanager
def shared_services(tmp: Path) -> Iterator[tuple[str, str, str]]:
    """A Prefect server, an S3 API with the bucket, a Redis: (API URL, S3 endpoint, Redis URL)."""
    import boto3
    import httpx

    from deployments.local_redis import LocalRedis
    from deployments.local_server import PrefectServer, free_port, stop_process, wait_until

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "testing")  # moto accepts any; the machines inherit them
    port = free_port()
    with open(tmp / "moto.log", "wb") as log:  # its request lines (and its own errors) out of the report
        moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{endpoint}/moto-api/", timeout=2).status_code == 200, 60, "moto S3 server")
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        with LocalRedis() as locks, PrefectServer(tmp / "prefect-home") as server:
            yield server.api_url, endpoint, locks.url
    finally:
        stop_process(moto)


def machine_env(tmp: Path, name: str, api_url: str, store: str, endpoint: str, locks: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BOARDFLOW_LOCKS", "PREFECT_HOME")}
    env.update(
        PREFECT_API_URL=api_url,
        BOARDFLOW_DATA_DIR=str(tmp / name / "data"),
        PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(tmp / name / "data" / "prefect-results"),
        BOARDFLOW_STORE=store,
        BOARDFLOW_S3_ENDPOINT_URL=endpoint,
        AWS_DEFAULT_REGION="us-east-1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    if locks:
        env["BOARDFLOW_LOCKS"] = locks
    return env


def run_pair(tmp: Path, api_url: str, endpoint: str, locks: str | None, resolution: str) -> dict[str, Any]:
    """Both machines' runs of the storyboard, started together; what each made and how many steps were made twice."""
    import redis

    if locks:
        redis.Redis.from_url(locks).flushdb()
    store = f"s3://{BUCKET}/{tmp.name}"
    boardflow = str(Path(sys.executable).with_name("boardflow"))
    args = [boardflow, "run", "storyboard", "-p", f"resolution={resolution}", "-p", "fps=24", "--json"]
    started = time.perf_counter()
    procs = {
        name: subprocess.Popen(
            args, env=machine_env(tmp, name, api_url, store, endpoint, locks), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        for name in ("machine-a", "machine-b")
    }  # fmt: skip
    made: dict[str, set[str]] = {}
    steps: set[str] = set()
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{err[-3000:]}")
        records = json.loads(out)["records"]
        steps |= {r["step"] for r in records}
        made[name] = {r["step"] for r in records if not r["cached"]}
    seconds = time.perf_counter() - started
    twice = made["machine-a"] & made["machine-b"]
    return {
        "steps": len(steps),
        "made": {name: len(labels) for name, labels in made.items()},
        "made_twice": len(twice),
        "executions": sum(len(labels) for labels in made.values()),
        "seconds": round(seconds, 1),
    }


def main(rounds: int, resolution: str) -> int:
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="duplicates-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with shared_services(tmp) as (api_url, endpoint, locks):
            for n in range(rounds):
                order = MODES if n % 2 == 0 else MODES[::-1]  # a load that drifts favours neither
                for mode in order:
                    folder = tmp / f"{mode.replace(' ', '-')}-{n}"
                    result = run_pair(folder, api_url, endpoint, locks if mode == "redis" else None, resolution)
                    results[mode].append(result)
                    print(f"round {n + 1}, {mode}: {json.dumps(result)}", flush=True)
    print(f"\nstoryboard at {resolution}, 24 fps; two machines (own data folders) on one S3 store, started together")
    for mode in MODES:
        for r in results[mode]:
            print(
                f"{mode:>10}: {r['made_twice']:>2} of {r['steps']} steps made twice "
                f"({r['executions']} executions for {r['steps']} steps, {r['seconds']} s)"
            )
    bad = [r for r in results["redis"] if r["made_twice"]]
    if bad:
        print(f"FAIL: with Redis locks, {len(bad)} round(s) made a step twice")
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--resolution", default="320x180")
    ns = parser.parse_args()
    sys.exit(main(ns.rounds, ns.resolution))
