"""Per-row orchestration cost of a batch on the Prefect server's two databases: SQLite vs PostgreSQL, in one run.

Run: .venv/bin/python -m bench.database_bench [--rows 20] [--rounds 2] [--concurrency 1]

Two `prefect server start` processes run side by side, one on SQLite in its PREFECT_HOME and one on a
throwaway PostgreSQL (`deployments.local_postgres`, Debian's binaries). Each batch is a fresh child
process (its own data folder, so no row hits another's cache) running `--rows` one-step rows (a text
template, whose own work is ~0) at `--concurrency`, timed from inside the child with imports excluded.
The order alternates per round (SQLite, PostgreSQL, then PostgreSQL, SQLite…) so a load that drifts
favours neither. The rows' own work is measured in the same child: the same step run directly (no
Prefect) for as many rows. Prints seconds per row, rows/minute and seconds per row above the rows' own
work per database (medians), the ratio, and how many API calls the client retried after a 503
("database is locked" on SQLite; Prefect's client waits 2 s). Both servers are started by boardflow's
`PrefectServer`, so the SQLite one has its writers waiting for each other (deployments/database.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.orchestration_bench import RESULT_MARK, base_env, count_api_retries, load, run_child
from bench.own_work import own_seconds_per_row
from bench.specs import OVERHEAD_SPEC

if TYPE_CHECKING:
    from deployments.local_server import PrefectServer


async def child(rows: int, concurrency: int, tag: str) -> dict:
    import flows  # noqa: F401  (offline Prefect defaults)
    from flows.batch.flow import batch
    from generators.registry import get_registry

    get_registry()
    retries = count_api_retries()
    lines = [{"line": f"{tag} row {i}"} for i in range(rows)]
    started = time.perf_counter()
    state = await batch(spec=OVERHEAD_SPEC, rows=lines, concurrency=concurrency, previews=0, return_state=True)
    seconds = time.perf_counter() - started
    result = await state.result(raise_on_failure=False)
    if not state.is_completed() or result.get("failed"):
        raise SystemExit(f"batch failed: {result}")
    own = await own_seconds_per_row(OVERHEAD_SPEC, [{"line": f"{tag} own {i}"} for i in range(rows)])
    return {"seconds": seconds, "rows": rows, "api_retries": len(retries), "own_per_row": own}


def both_servers(tmp: Path, pg_url: str) -> tuple[dict[str, PrefectServer], str]:
    """A server on SQLite in its own home and one on the PostgreSQL at `pg_url` (not started), with its version."""
    from deployments.database import check_postgres, database_url
    from deployments.local_server import PrefectServer

    url = database_url(pg_url)
    assert url is not None
    version = check_postgres(url)
    return {
        "sqlite": PrefectServer(tmp / "sqlite-home"),
        "postgresql": PrefectServer(tmp / "pg-home", extra_env={"PREFECT_API_DATABASE_CONNECTION_URL": url}),
    }, version


def main(rows: int, rounds: int, concurrency: int) -> int:
    from deployments.local_postgres import LocalPostgres

    me = "bench.database_bench"
    with tempfile.TemporaryDirectory(prefix="database-bench-") as tmp_name, LocalPostgres() as pg:
        tmp = Path(tmp_name)
        servers, version = both_servers(tmp, pg.url)
        for server in servers.values():
            server.start()
        try:
            print(f"servers up: SQLite, PostgreSQL {version} · {load()}", flush=True)
            times: dict[str, list[dict]] = {name: [] for name in servers}
            for name, server in servers.items():  # warm-up: registers the flows, first-call costs
                env = {**base_env(tmp / "client-home"), "PREFECT_API_URL": server.api_url}
                run_child(me, ["--child", "2", "1", f"warm-{name}"], {**env, "BOARDFLOW_DATA_DIR": str(tmp / name)})
            for r in range(rounds):
                order = list(servers) if r % 2 == 0 else list(reversed(servers))
                for name in order:
                    env = {**base_env(tmp / "client-home"), "PREFECT_API_URL": servers[name].api_url}
                    env["BOARDFLOW_DATA_DIR"] = str(tmp / f"{name}-{r}")
                    got = run_child(me, ["--child", str(rows), str(concurrency), f"{name}-{r}"], env)
                    times[name].append(got)
                    print(
                        f"round {r + 1} {name:10s} {got['seconds']:6.1f} s = {got['seconds'] / rows:.2f} s/row "
                        f"(own work {got['own_per_row'] * 1000:.1f} ms/row), {got['api_retries']} API 503 retries "
                        f"· {load()}",
                        flush=True,
                    )
        finally:
            for server in servers.values():
                server.stop()
    per_row = {name: statistics.median(t["seconds"] / t["rows"] for t in got) for name, got in times.items()}
    above = {
        name: statistics.median(t["seconds"] / t["rows"] - t["own_per_row"] for t in got) for name, got in times.items()
    }
    print(f"\n{rows} one-step rows at concurrency {concurrency}, {rounds} round(s), medians:")
    for name, seconds in per_row.items():
        retried = sum(t["api_retries"] for t in times[name])
        print(
            f"  {name:10s} {seconds:.2f} s/row = {60 / seconds:5.1f} rows/min, {above[name]:.2f} s/row above the "
            f"rows' own work; API 503 retries in all: {retried}"
        )
    print(f"  PostgreSQL / SQLite, seconds per row: {per_row['postgresql'] / per_row['sqlite']:.2f}x")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, conc, tag = args.child
        print(RESULT_MARK + json.dumps(asyncio.run(child(int(n), int(conc), tag))), flush=True)
        sys.exit(0)
    sys.exit(main(args.rows, args.rounds, args.concurrency))
