"""`boardflow batch --on-workers` on a PostgreSQL-backed server with two process workers: does a big one-step
batch complete, and at what rate?

Run: .venv/bin/python -m bench.worker_batch_bench [--rows 200] [--limit 4] [--concurrency 8]

A throwaway PostgreSQL (`deployments.local_postgres`), a `prefect server start` on it, the process pool and the
`pipeline` deployment of prefect.yaml (`prefect deploy --name pipeline`), and two `prefect worker start` workers
sharing one data folder and store. Then `boardflow batch <one-step spec> rows.csv --on-workers`, timed as a
command, and its results table read back: rows completed, rows per worker, rows/minute, seconds per row, and
the CPU the workers' process trees used per row (each row is a flow run, so a fresh Python process: that is
most of a row's cost). The row's own work (a text template) is ~0.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.specs import OVERHEAD_SPEC
from bench.workers_bench import load, pool_name, prefect_cli, start_worker, tree_cpu

ROOT = Path(__file__).resolve().parents[1]
WORKERS = ("worker-a", "worker-b")


def write_inputs(tmp: Path, rows: int) -> tuple[Path, Path]:
    spec = tmp / "overhead.yaml"
    spec.write_text(json.dumps(OVERHEAD_SPEC), encoding="utf-8")  # JSON is YAML
    table = tmp / "rows.csv"
    with table.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["line"])
        writer.writerows([f"row {i} of {rows}"] for i in range(rows))
    return spec, table


def main(rows: int, limit: int, concurrency: int) -> int:
    from deployments.database import check_postgres, database_url
    from deployments.local_postgres import LocalPostgres
    from deployments.local_server import PrefectServer, wait_until

    with tempfile.TemporaryDirectory(prefix="worker-batch-bench-") as tmp_name, LocalPostgres() as pg:
        tmp = Path(tmp_name)
        url = database_url(pg.url)
        assert url is not None
        version = check_postgres(url)
        data = tmp / "data"
        with PrefectServer(tmp / "home", extra_env={"PREFECT_API_DATABASE_CONNECTION_URL": url}) as server:
            pool = pool_name()
            prefect_cli(server, "work-pool", "create", pool, "--type", "process", "--overwrite")
            prefect_cli(server, "deploy", "--name", "pipeline")
            workers = {name: start_worker(server, pool, name, limit, data) for name in WORKERS}
            wait_until(lambda: asyncio.run(_online(server.api_url, pool)) >= set(WORKERS), 120, "both workers online")
            spec, table = write_inputs(tmp, rows)
            print(f"PostgreSQL {version}; 2 workers --limit {limit}; {rows} rows, --concurrency {concurrency} · "
                  f"{load()}", flush=True)  # fmt: skip
            cpu_before = sum(tree_cpu(w.pid) for w in workers.values())
            started = time.perf_counter()
            done = subprocess.run(
                [str(Path(sys.executable).with_name("boardflow")), "batch", str(spec), str(table), "--on-workers",
                 "--concurrency", str(concurrency), "--max-rows", str(max(rows, 1)), "--out", str(tmp / "results")],
                cwd=ROOT, env=server.env(BOARDFLOW_DATA_DIR=str(data)), capture_output=True, text=True,
            )  # fmt: skip
            wall = time.perf_counter() - started
            worker_cpu = sum(tree_cpu(w.pid) for w in workers.values()) - cpu_before
            if done.returncode:
                print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
                return 1
            with (tmp / "results.csv").open(encoding="utf-8") as fh:
                results = list(csv.DictReader(fh))
            statuses = Counter(r["status"] for r in results)
            by_worker = Counter(asyncio.run(_workers_of(server.api_url, [r["flow_run_id"] for r in results])))
        print(
            f"rows completed: {statuses.get('completed', 0)}/{rows} ({dict(statuses)}); per worker: {dict(by_worker)}"
        )
        print(f"wall {wall:.1f} s = {rows / wall * 60:.1f} rows/min = {wall / rows:.2f} s/row; "
              f"workers' CPU {worker_cpu / rows:.2f} s/row · {load()}")  # fmt: skip
        return 0 if statuses.get("completed", 0) == rows else 1


async def _online(api_url: str, pool: str) -> set[str]:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import WorkerStatus

    async with PrefectClient(api_url) as client:
        return {w.name for w in await client.read_workers_for_work_pool(pool) if w.status == WorkerStatus.ONLINE}


async def _workers_of(api_url: str, ids: list[str]) -> list[str]:
    """Which worker ran each row's flow run (rows read back from the cache have no run)."""
    from uuid import UUID

    from prefect.client.orchestration import PrefectClient

    from deployments.fanout import read_runs

    async with PrefectClient(api_url) as client:
        runs = await read_runs([UUID(i) for i in ids if i], client=client)
    return [(run.labels or {}).get("prefect.worker.name", "?") for run in runs]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200, help="one-step rows in the batch (default 200)")
    parser.add_argument("--limit", type=int, default=4, help="flow runs at a time per worker (default 4)")
    parser.add_argument("--concurrency", type=int, default=8, help="rows submitted and unfinished at once (default 8)")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    sys.exit(main(args.rows, args.limit, args.concurrency))
