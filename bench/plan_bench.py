"""Planning a big batch: time and peak RSS to read and plan 1k / 10k / 100k slideshow rows (nothing runs).

Run: .venv/bin/python -m bench.plan_bench [--sizes 1000,10000,100000]

Each size is a fresh child process with a fresh data folder: it writes a CSV of distinct slideshow rows,
then times what `boardflow batch` does before any row runs — read the CSV (`read_rows`) and check and
plan every row (`prepare_batch`: validation, binding, cost estimate and result-index lookup of each of
the four steps). Peak RSS is the child's own (ru_maxrss), imports included, with the baseline of a child
that only imported the same modules printed beside it. Costs must grow linearly: seconds per row and
RSS above the baseline per row are printed for each size, and the issue's target is 100k rows in ≤ 30 s
and ≤ 400 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from bench.orchestration_bench import RESULT_MARK, base_env, load, run_child

TARGET = {"rows": 100_000, "seconds": 30.0, "rss_mib": 400.0}
MOTIONS = ["zoom-in", "pan-right", "zoom-out", "pan-left", "pan-up", "pan-down"]
MOODS = ["calm", "upbeat", "dreamy", "tense", "epic"]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["prompt", "caption", "motion", "mood", "duration", "seed"])
        for i in range(rows):
            out.writerow([f"a lighthouse at dawn, slide {i}", f"slide {i}", MOTIONS[i % 6], MOODS[i % 5], 2.0, i])


async def child(rows: int, folder: Path) -> dict:
    from flows.batch.flow import prepare_batch
    from flows.batch.rows import read_rows
    from flows.pipeline import PipelineSpec
    from generators.registry import get_registry
    from generators.storage import open_store

    spec, registry, store = PipelineSpec.resolve("slideshow"), get_registry(), open_store()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if rows == 0:
        return {"rows": 0, "seconds": 0.0, "rss_mib": baseline, "baseline_mib": baseline}
    path = folder / "rows.csv"
    write_csv(path, rows)
    started = time.perf_counter()
    raw = read_rows(path)
    plan = await prepare_batch(spec, list(enumerate(raw, start=1)), {}, registry, store)
    seconds = time.perf_counter() - started
    if len(plan.valid_rows) != rows:
        raise SystemExit(f"{rows - len(plan.valid_rows)} rows were refused: {plan.problems[:3]}")
    return {
        "rows": rows,
        "seconds": seconds,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "baseline_mib": baseline,
        "total_usd": str(plan.total_usd),
    }


def main(sizes: list[int]) -> int:
    me = "bench.plan_bench"
    results = []
    with tempfile.TemporaryDirectory(prefix="plan-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for rows in [0, *sizes]:
            folder = tmp / f"rows-{rows}"
            folder.mkdir()
            env = {**base_env(tmp / "prefect-home"), "BOARDFLOW_DATA_DIR": str(folder / "data")}
            got = run_child(me, ["--child", str(rows), str(folder)], env, timeout=3600)
            results.append(got)
            if rows:
                above = got["rss_mib"] - got["baseline_mib"]
                print(
                    f"{rows:>7} rows: {got['seconds']:7.1f} s = {got['seconds'] / rows * 1000:.2f} ms/row; peak RSS "
                    f"{got['rss_mib']:.0f} MiB ({above:.0f} above the imports = {above * 1024 / rows:.1f} KiB/row) · "
                    f"{load()}",
                    flush=True,
                )
            else:
                print(f"imports only: peak RSS {got['rss_mib']:.0f} MiB · {load()}", flush=True)
    big = next((r for r in results if r["rows"] == TARGET["rows"]), None)
    if big is not None:
        ok = big["seconds"] <= TARGET["seconds"] and big["rss_mib"] <= TARGET["rss_mib"]
        print(
            f"\n{TARGET['rows']} rows: {big['seconds']:.1f} s (target ≤ {TARGET['seconds']:.0f}), "
            f"{big['rss_mib']:.0f} MiB (target ≤ {TARGET['rss_mib']:.0f}): {'OK' if ok else 'OVER TARGET'}"
        )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated row counts")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, where = args.child
        print(RESULT_MARK + json.dumps(asyncio.run(child(int(n), Path(where)))), flush=True)
        sys.exit(0)
    sys.exit(main([int(s) for s in args.sizes.split(",") if s.strip()]))
