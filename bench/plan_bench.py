"""Planning a big batch: time and peak RSS to read and plan 1k / 10k / 100k slideshow rows (nothing runs).

Run: .venv/bin/python -m bench.plan_bench [--sizes 1000,10000,100000]

Each size is a fresh child process with a fresh data folder: it writes a CSV of distinct slideshow rows,
then times what `boardflow batch` does before any row runs — count the rows against the cap
(`RowSource.count`), then check and plan every row as the CSV streams (`prepare_batch`: validation,
binding, cost estimate and result-index lookup of each of the four steps). Peak RSS is the child's own
high-water mark (VmHWM), imports included; a baseline child that only imports the same modules gives the
figure to subtract. Costs must grow linearly: ms per row (wall and CPU: the CPU
figure is the fairer one on a shared machine), the RSS above the baseline, and the ratios from
one size to the next are printed; the issue's target is 100k rows in ≤ 30 s and ≤ 400 MiB.
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

from bench.orchestration_bench import RESULT_MARK, base_env, cpu_seconds, load, run_child

TARGET = {"rows": 100_000, "seconds": 30.0, "rss_mib": 400.0}
MOTIONS = ["zoom-in", "pan-right", "zoom-out", "pan-left", "pan-up", "pan-down"]
MOODS = ["calm", "upbeat", "dreamy", "tense", "epic"]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["prompt", "caption", "motion", "mood", "duration", "seed"])
        for i in range(rows):
            out.writerow([f"a lighthouse at dawn, slide {i}", f"slide {i}", MOTIONS[i % 6], MOODS[i % 5], 2.0, i])


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def child(rows: int, folder: Path) -> dict:
    from flows.batch.flow import prepare_batch
    from flows.batch.source import RowSource
    from flows.pipeline import PipelineSpec
    from generators.registry import get_registry
    from generators.storage import open_store

    spec, registry, store = PipelineSpec.resolve("slideshow"), get_registry(), open_store()
    if rows == 0:
        return {"rows": 0, "seconds": 0.0, "rss_mib": peak_rss_mib()}
    path = folder / "rows.csv"
    write_csv(path, rows)
    started, cpu = time.perf_counter(), cpu_seconds()
    source = RowSource(path)
    source.count()
    plan = await prepare_batch(spec, source, {}, registry, store)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    if plan.valid_count != rows:
        raise SystemExit(f"{rows - plan.valid_count} rows were refused: {plan.problems[:3]}")
    return {"rows": rows, "seconds": seconds, "cpu": cpu, "rss_mib": peak_rss_mib(), "total_usd": str(plan.total_usd)}


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
            if not rows:
                baseline = got["rss_mib"]
                print(f"imports only: peak RSS {baseline:.0f} MiB · {load()}", flush=True)
                continue
            got["above_mib"] = got["rss_mib"] - baseline
            results.append(got)
            print(
                f"{rows:>7} rows: {got['seconds']:6.1f} s = {got['seconds'] / rows * 1000:.3f} ms/row "
                f"({got['cpu'] / rows * 1000:.3f} ms/row of CPU); peak RSS "
                f"{got['rss_mib']:.0f} MiB, {got['above_mib']:.0f} MiB above the imports · {load()}",
                flush=True,
            )
    for small, big in zip(results, results[1:], strict=False):
        per_row = (big["seconds"] / big["rows"]) / (small["seconds"] / small["rows"])
        cpu_per_row = (big["cpu"] / big["rows"]) / (small["cpu"] / small["rows"])
        print(
            f"{small['rows']} → {big['rows']} rows ({big['rows'] / small['rows']:.0f}×): time "
            f"{big['seconds'] / small['seconds']:.1f}×, ms/row {per_row:.2f}×, CPU ms/row {cpu_per_row:.2f}×, "
            f"RSS above the imports {big['above_mib']:.0f} vs {small['above_mib']:.0f} MiB"
        )
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
