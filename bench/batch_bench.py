"""Batch bench on both server databases in one run: rows/minute of a 3-stage local pipeline at row concurrency 1
vs 2, a cached re-run, and the per-row overhead above the rows' own work — on SQLite and on PostgreSQL.

Run: .venv/bin/python -m bench.batch_bench [--rows 8] [--overhead-rows 20] [--rounds 2]

Two `prefect server start` processes run side by side (boardflow's `PrefectServer`, as `boardflow server`
starts them): one on SQLite in its PREFECT_HOME, one on a throwaway PostgreSQL (`deployments.local_postgres`,
Debian's binaries). Every measurement is a fresh child process pointed at one of them, timed from inside
the child with imports excluded; the server's CPU is read from its process tree around the child. Each
round alternates the order of the databases (SQLite first, then PostgreSQL first…), so a load that drifts
favours neither; figures are medians over the rounds.

1. The slideshow pipeline (picture → Ken Burns clip → mix with a music bed; the music is a fourth, shared
   step) at tiny sizes, `--rows` distinct rows at row concurrency 1 and `--rows` others at 2 (the two in
   alternating order too). Rows/minute and the ratio 2 vs 1; CPU of the batch's process, its ffmpeg
   children and the Prefect server.
2. The concurrency-2 batch again, in its data folder: every row from the cache. The wall ratio against its
   first run (target ≤ 0.15) and what it spent ($0 expected).
3. Orchestration overhead: `--overhead-rows` one-step text rows at concurrency 1, and the same rows' step
   run directly in the same child (the rows' own work): seconds per row above it, and the API calls the
   client retried after a 503 ("database is locked").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

TARGET_RERUN_RATIO = 0.15
MOTIONS = ["zoom-in", "pan-right", "zoom-out", "pan-left", "pan-up", "pan-down"]
MOODS = ["calm", "upbeat", "dreamy", "tense", "epic"]
SUBJECTS = ["lighthouse", "fishing village", "forest path", "mountain lake", "desert road", "harbour", "meadow"]
TINY = {"resolution": "320x180", "image_size": "512x512", "duration": 1.0, "fps": 24}
DATABASES = ("sqlite", "postgresql")


def rows(tag: str, count: int, seed: int) -> list[dict]:
    """Distinct slides; rows of one mood share their music (as a real slideshow would)."""
    return [
        {
            "prompt": f"a {SUBJECTS[i % len(SUBJECTS)]} at dawn, scene {tag}-{i}",
            "caption": f"{tag} {i}",
            "motion": MOTIONS[i % len(MOTIONS)],
            "mood": MOODS[i % len(MOODS)],
            "seed": seed,
            **TINY,
        }
        for i in range(count)
    ]


def cpu() -> tuple[float, float]:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


# -- child side: one batch against the server PREFECT_API_URL names ----------------------------------------
async def child(kind: str, count: int, concurrency: int, tag: str) -> dict:
    import flows  # noqa: F401  (offline Prefect defaults)
    from bench.orchestration_bench import count_api_retries
    from bench.own_work import own_seconds_per_row
    from bench.specs import OVERHEAD_SPEC
    from flows.batch.flow import batch
    from generators.registry import get_registry

    get_registry()
    retries = count_api_retries()
    spec, batch_rows = ("slideshow", rows(tag, count, 7)) if kind == "slides" else (OVERHEAD_SPEC, None)
    if batch_rows is None:
        batch_rows = [{"line": f"{tag} row {i}"} for i in range(count)]
    store = flows_store_objects()
    own0, kids0 = cpu()
    started = time.perf_counter()
    state = await batch(spec=spec, rows=batch_rows, concurrency=concurrency, previews=0, return_state=True)
    wall = time.perf_counter() - started
    own1, kids1 = cpu()
    result = await state.result(raise_on_failure=False)
    if not state.is_completed() or result.get("invalid") or result.get("failed"):
        raise SystemExit(f"batch failed or skipped rows: {result}")
    got = {
        "wall": wall, "rows": count, "own_cpu": own1 - own0, "kids_cpu": kids1 - kids0,
        "api_retries": len(retries), "cached": result["cached"], "spent_usd": str(result["spent_usd"]),
        "new_objects": flows_store_objects() - store,
    }  # fmt: skip
    if kind == "overhead":
        own_rows = [{"line": f"{tag} own {i}"} for i in range(count)]
        got["own_per_row"] = await own_seconds_per_row(OVERHEAD_SPEC, own_rows)
    return got


def flows_store_objects() -> int:
    from generators.settings import get_settings

    root = get_settings().data_dir / "store" / "objects"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


# -- parent side ------------------------------------------------------------------------------------------
def main(count: int, overhead_rows: int, rounds: int) -> int:
    from bench.database_bench import both_servers
    from bench.orchestration_bench import base_env, load, run_child, tree_cpu_seconds
    from deployments.local_postgres import LocalPostgres

    me = "bench.batch_bench"
    print(f"batch bench: {count} slideshow rows per concurrency {TINY}, {overhead_rows} overhead rows, "
          f"{rounds} round(s) · {load()}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp_name, LocalPostgres() as pg:
        tmp = Path(tmp_name)
        servers, version = both_servers(tmp, pg.url)
        got: dict[str, dict[str, list[dict]]] = {db: {} for db in DATABASES}
        try:
            for server in servers.values():
                server.start()
            print(f"servers up: SQLite, PostgreSQL {version}", flush=True)

            def measure(db: str, what: str, args: list[str], data: str) -> dict:
                env = {**base_env(tmp / "client-home"), "PREFECT_API_URL": servers[db].api_url}
                env["BOARDFLOW_DATA_DIR"] = str(tmp / "data" / db / data)
                server_pid = servers[db].proc.pid  # type: ignore[union-attr]
                before = tree_cpu_seconds(server_pid)
                result = run_child(me, ["--child", *args], env)
                result["server_cpu"] = tree_cpu_seconds(server_pid) - before
                got[db].setdefault(what, []).append(result)
                extra = f", own work {result['own_per_row'] * 1000:.1f} ms/row" if "own_per_row" in result else ""
                print(
                    f"  {db:10s} {what:14s} {result['rows']:3d} rows {result['wall']:6.1f} s; CPU batch "
                    f"{result['own_cpu']:.1f} s, ffmpeg {result['kids_cpu']:.1f} s, "
                    f"server {result['server_cpu']:.1f} s; "
                    f"from cache {result['cached']}, 503 retries {result['api_retries']}{extra} · {load()}",
                    flush=True,
                )
                return result

            for db in DATABASES:  # warm-up: registers the flows, first-call costs
                measure(db, "warm-up", ["slides", "1", "1", f"warm-{db}"], "warm")
            for r in range(rounds):
                order = DATABASES if r % 2 == 0 else DATABASES[::-1]
                print(f"round {r + 1}: {', '.join(order)}", flush=True)
                for db in order:
                    for conc in (1, 2) if r % 2 == 0 else (2, 1):
                        measure(db, f"concurrency {conc}", ["slides", str(count), str(conc), f"{db}-{r}-c{conc}"],
                                f"r{r}-c{conc}")  # fmt: skip
                    measure(db, "cached re-run", ["slides", str(count), "2", f"{db}-{r}-c2"], f"r{r}-c2")
                    if overhead_rows:
                        measure(db, "overhead", ["overhead", str(overhead_rows), "1", f"{db}-{r}-o"], f"r{r}-o")
        finally:
            for server in servers.values():
                server.stop()
    return report(got, count, overhead_rows, rounds)


def report(got: dict[str, dict[str, list[dict]]], count: int, overhead_rows: int, rounds: int) -> int:
    def med(values) -> float:
        return statistics.median(list(values))

    print(f"\n{count} slideshow rows per concurrency, {overhead_rows} one-step rows, {rounds} round(s), medians:")
    print(f"  {'':12}{'rows/min c1':>12}{'rows/min c2':>12}{'c2 / c1':>9}{'re-run':>9}{'spent':>7}"
          f"{'s/row one-step':>16}{'above own work':>16}{'503 retries':>13}")  # fmt: skip
    ok = True
    for db in DATABASES:
        phases = got[db]
        per_min = {c: med(count / m["wall"] * 60 for m in phases[f"concurrency {c}"]) for c in (1, 2)}
        pairs = zip(phases["cached re-run"], phases["concurrency 2"], strict=True)
        rerun = med(again["wall"] / first["wall"] for again, first in pairs)
        spent = sum(Decimal(m["spent_usd"]) for m in phases["cached re-run"])
        cached = all(m["cached"] == count and m["new_objects"] == 0 for m in phases["cached re-run"])
        ok = ok and rerun <= TARGET_RERUN_RATIO and cached and spent == 0
        line = (
            f"  {db:12}{per_min[1]:>12.1f}{per_min[2]:>12.1f}{per_min[2] / per_min[1]:>8.2f}x"
            f"{rerun:>9.3f}{'$' + str(spent):>7}"
        )
        if overhead_rows:
            over = phases["overhead"]
            per_row = med(m["wall"] / m["rows"] for m in over)
            above = med(m["wall"] / m["rows"] - m["own_per_row"] for m in over)
            retried = sum(m["api_retries"] for m in over)
            line += f"{per_row:>16.2f}{above:>16.2f}{retried:>13}"
        print(line)
    print(f"  re-run: wall of the cached re-run / its first run (target ≤ {TARGET_RERUN_RATIO}); "
          f"{'OK' if ok else 'OVER TARGET or not wholly cached'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8, help="slideshow rows per concurrency setting (default 8)")
    parser.add_argument("--overhead-rows", type=int, default=20, help="rows of the one-step batch (0 skips it)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, the databases' order alternating (default 2)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, conc, tag = args.child
        print("RESULT " + json.dumps(asyncio.run(child(kind, int(n), int(conc), tag))), flush=True)
        sys.exit(0)
    sys.exit(main(args.rows, args.overhead_rows, args.rounds))
