"""Batch bench: rows/minute of a 3-stage local pipeline at row concurrency 1 vs 2, and a re-run of the same batch.

Run: .venv/bin/python -m bench.batch_bench [--rows 100] [--overhead-rows 20]

Everything runs in this process against Prefect's ephemeral server, in a temporary data folder:

1. The slideshow pipeline (picture → Ken Burns clip → mix with a music bed; the music is a fourth,
   shared step) at tiny sizes, `--rows` rows at row concurrency 1 and `--rows` other rows at 2, in two
   halves each with the order swapped, so drift in the machine's load falls on both. Prints rows/minute
   and the ratio 2 vs 1, with the CPU seconds of this process, its ffmpeg children and the Prefect server.
2. The concurrency-2 batch again: every row is served from the cache. Prints the wall ratio against its
   first run (target ≤ 0.15), what it spent ($0 expected) and whether any new artifact was written.
3. Orchestration overhead: a one-step text pipeline, so a row's time is what Prefect and boardflow add
   (subflow run, task run, provider slot, cost table, progress).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

_WORK = Path(tempfile.mkdtemp(prefix="boardflow-batch-bench-"))
os.environ.update(
    BOARDFLOW_DATA_DIR=str(_WORK / "data"),
    PREFECT_HOME=str(_WORK / "prefect-home"),
    PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(_WORK / "data" / "prefect-results"),
    PREFECT_LOGGING_LEVEL="WARNING",
)
os.environ.pop("PREFECT_API_URL", None)

import flows  # noqa: E402, F401  (offline-safe Prefect defaults)
from bench.specs import OVERHEAD_SPEC  # noqa: E402
from flows.batch.flow import batch  # noqa: E402

TARGET_RERUN_RATIO = 0.15
MOTIONS = ["zoom-in", "pan-right", "zoom-out", "pan-left", "pan-up", "pan-down"]
MOODS = ["calm", "upbeat", "dreamy", "tense", "epic"]
SUBJECTS = ["lighthouse", "fishing village", "forest path", "mountain lake", "desert road", "harbour", "meadow"]
TINY = {"resolution": "320x180", "image_size": "512x512", "duration": 1.0, "fps": 24}


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


def server_process():
    """The ephemeral Prefect server Prefect started as our child (None until a flow has run)."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        if "uvicorn" in " ".join(child.cmdline()):
            return child
    return None


class Meter:
    """Wall and CPU seconds of one phase: ours, our finished children (ffmpeg), and the Prefect server."""

    def __enter__(self) -> Meter:
        self.server = server_process()
        self._start = (time.perf_counter(), *self._cpu())
        return self

    def __exit__(self, *exc) -> None:
        end = (time.perf_counter(), *self._cpu())
        self.wall, self.own_cpu, self.kids_cpu, self.server_cpu = (b - a for a, b in zip(self._start, end, strict=True))

    def _cpu(self) -> tuple[float, float, float]:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        server = sum(self.server.cpu_times()[:2]) if self.server is not None else 0.0
        return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime, server

    def cpu_text(self) -> str:
        total = self.own_cpu + self.kids_cpu + self.server_cpu
        share = self.server_cpu / total if total else 0.0
        return (
            f"CPU {total:6.1f} s (boardflow {self.own_cpu:.1f}, ffmpeg {self.kids_cpu:.1f}, "
            f"Prefect server {self.server_cpu:.1f} = {share:.0%})"
        )


async def run(spec, batch_rows: list[dict], concurrency: int) -> dict:
    state = await batch(spec=spec, rows=batch_rows, concurrency=concurrency, previews=0, return_state=True)
    result = await state.result(raise_on_failure=False)
    if not state.is_completed() or result.get("invalid"):
        raise SystemExit(f"batch failed or skipped rows: {result}")
    return result


def store_objects() -> int:
    root = _WORK / "data" / "store" / "objects"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


async def main(count: int, overhead_rows: int) -> None:
    print(f"batch bench: {count} rows per concurrency, tiny slides {TINY}; work folder {_WORK}", flush=True)
    with Meter() as warm:
        await run("slideshow", rows("warm", 1, 99), 1)
    print(f"warm-up (server start, first row): {warm.wall:.1f} s", flush=True)

    half = count // 2
    sets = {1: rows("one", count, 1), 2: rows("two", count, 2)}
    walls = {1: 0.0, 2: 0.0}
    meters: dict[int, list[Meter]] = {1: [], 2: []}
    for part, order in ((0, (1, 2)), (1, (2, 1))):
        for conc in order:
            chunk = sets[conc][:half] if part == 0 else sets[conc][half:]
            with Meter() as m:
                await run("slideshow", chunk, conc)
            walls[conc] += m.wall
            meters[conc].append(m)
            print(f"  concurrency {conc}, rows {len(chunk)}: {m.wall:6.1f} s  {m.cpu_text()}", flush=True)
    per_min = {c: count / walls[c] * 60 for c in walls}
    print(f"rows/minute: concurrency 1 {per_min[1]:.1f}, concurrency 2 {per_min[2]:.1f}")
    print(f"ratio concurrency 2 / 1: {per_min[2] / per_min[1]:.2f}x (2 cores; the ffmpeg steps use both)")

    before = store_objects()
    with Meter() as again:
        result = await run("slideshow", sets[2], 2)
    ratio = again.wall / walls[2]
    spent = Decimal(result["spent_usd"])
    new_objects = store_objects() - before
    print(
        f"re-run of the concurrency-2 batch: {again.wall:.1f} s vs {walls[2]:.1f} s first = {ratio:.3f} "
        f"(target ≤ {TARGET_RERUN_RATIO}) {'OK' if ratio <= TARGET_RERUN_RATIO else 'OVER'}; "
        f"rows from cache {result['cached']}/{result['rows']}, spent ${spent}, new artifacts {new_objects}"
    )
    print(f"  {again.cpu_text()}")

    if overhead_rows:
        lines = [{"line": f"row {i} of the overhead batch"} for i in range(overhead_rows)]
        with Meter() as m:
            await run(OVERHEAD_SPEC, lines, 2)
        print(
            f"orchestration overhead: {overhead_rows} one-step rows at concurrency 2 in {m.wall:.1f} s = "
            f"{m.wall / overhead_rows:.2f} s/row wall  {m.cpu_text()}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100, help="rows per concurrency setting (default 100)")
    parser.add_argument("--overhead-rows", type=int, default=20, help="rows of the overhead batch (0 skips it)")
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.overhead_rows))
    sys.exit(0)
