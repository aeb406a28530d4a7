"""Scale-out bench: rows/minute of a 3-step local pipeline on 1 vs 2 Prefect process workers, on a SQLite and on a
PostgreSQL server in one run, the per-row overhead above the rows' own work, and the server's CPU.

Run: .venv/bin/python -m bench.workers_bench [--rows 8] [--limit 1] [--databases sqlite,postgresql]

The scale-out path, for real, once per database: a `prefect server start` on a free 127.0.0.1 port
(boardflow's `PrefectServer`, temporary PREFECT_HOME; the PostgreSQL one on a throwaway cluster from
`deployments.local_postgres`),
the process work pool of prefect.yaml, the `pipeline` deployment deployed to it with `prefect deploy`, and
`prefect worker start --type process` workers pulling the rows, each row a separate flow run of that deployment
(deployments/fanout.py, as the scale-out test does). Both workers of a server share one data folder
(BOARDFLOW_DATA_DIR: local store, cache records, locks, results), as two workers on one machine would; each
server has its own. Both servers and their first workers stay up for the whole run (an idle worker polls
its server once a second).

Rows are slideshow slides at tiny sizes (picture 512x512 → Ken Burns clip 320x180 at 24 fps, 1.0, 1.5 or 2.0 s
→ mixed with a music bed; the music is a fourth step). Every row has its own prompt, and each phase its own
seed, so no picture, clip or slide is a cache hit, and no phase can reuse another's music. Within a phase,
rows of one mood and length share their music bed (made once, then taken from the cache), as a real batch
would: 15 beds per phase; the same rows in both phases, so both get the same share of hits.

- Phase 1: one worker; phase 2: two workers on the same pool. Each worker takes `--limit` runs at a time
  (default 1: on 2 cores one worker × 1 run against two workers × 1 run is the clean comparison; each run
  already keeps both cores busy part of the time, since its ffmpeg steps are multi-threaded).
- Each phase has `--rows` rows, run in two halves in the order 1, 2, 2, 1, so drift in the machine's load
  falls on both phases; the databases take turns going first at each step (SQLite 1, PostgreSQL 1,
  PostgreSQL 2, SQLite 2, SQLite 2, PostgreSQL 2, …). A warm-up row per server (not counted) runs first.
- Per-row overhead above the row's own work: the phase's wall × its run slots (workers × limit) / rows,
  less the mean of the rows' own work (the generator seconds of the steps each row ran, from its records).
  It includes the worker's pick-up and the flow run's process start.
- Wall time of a half: from just before its runs are submitted to the last run's end time (the server's
  record, so the bench's polling interval does not count). Rows/minute per phase and the ratio 2 / 1.
- CPU seconds in each half (psutil, each process tree including finished children, e.g. flow runs and
  ffmpeg): the Prefect server (and its children), the workers (and their flow runs), and this bench (which
  polls the API every 2 s: that load is also in the server's figure). The server's share = server /
  (server + workers). Peak RSS of the server's process tree and of the worker trees, sampled every second.
- Checks: every run COMPLETED, phase 1 ran only on the first worker, phase 2 ran on both (the run's
  `prefect.worker.name` label); no picture, clip or slide came from the cache. Exit 1 otherwise.
Prints a table per database, a comparison, and a `RESULT {json}` line. Every process it starts is stopped
on exit, Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun, WorkerStatus

from deployments.database import check_postgres, database_url
from deployments.fanout import DEPLOYMENT, run_result, submit_rows, wait_for_runs
from deployments.local_postgres import LocalPostgres
from deployments.local_server import PrefectServer, prefect_executable, stop_process, wait_until

ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENT_NAME = "pipeline"
PIPELINE = "slideshow"
RESULT_MARK = "RESULT "
WORKERS = ("worker-a", "worker-b")
POLL_SECONDS = 2.0
MOTIONS = ["zoom-in", "pan-right", "zoom-out", "pan-left", "pan-up", "pan-down"]
MOODS = ["calm", "upbeat", "dreamy", "tense", "epic"]
DURATIONS = [1.0, 1.5, 2.0]  # with the 5 moods: 15 music beds per phase
SUBJECTS = ["lighthouse", "fishing village", "forest path", "mountain lake", "desert road", "harbour", "meadow"]
# Anything here would point the workers elsewhere (another server, a shared S3 store) or use another profile.
DATABASES = ("sqlite", "postgresql")
FOREIGN_ENV = (
    "PREFECT_API_URL", "PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_API_KEY", "PREFECT_PROFILE", "BOARDFLOW_STORE",
    "BOARDFLOW_S3_ENDPOINT_URL",
)  # fmt: skip


def pool_name() -> str:
    """The work pool of the `pipeline` deployment in prefect.yaml (read without importing flows)."""
    import yaml

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    spec = next(d for d in config["deployments"] if d["name"] == DEPLOYMENT_NAME)
    return spec["work_pool"]["name"]


def rows(phase: int, count: int) -> list[dict[str, Any]]:
    """Distinct slides for one phase (its own seed); the same mix of moods, lengths and frame rates in each."""
    return [
        {
            "prompt": f"a {SUBJECTS[i % len(SUBJECTS)]} at dawn, phase {phase} scene {i}",
            "caption": f"{phase}.{i}",
            "motion": MOTIONS[i % len(MOTIONS)],
            "mood": MOODS[i % len(MOODS)],
            "duration": DURATIONS[i % len(DURATIONS)],
            "fps": 24,
            "image_size": "512x512",
            "resolution": "320x180",
            "seed": 1000 + phase,
        }
        for i in range(count)
    ]


# -- processes ------------------------------------------------------------------------------------------------
def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process tree so far, finished descendants included.

    A finished child's CPU moves into its parent's children_* times once the parent reaps it (a flow run's
    ffmpeg into the flow run, the flow run into the worker), so summing all four fields of every living
    process in the tree counts each process once, dead or alive.
    """
    total = 0.0
    for proc in tree(pid):
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def tree_rss(pid: int) -> int:
    total = 0
    for proc in tree(pid):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def own_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


class PeakSampler(threading.Thread):
    """Samples the RSS of the server's tree and of the workers' trees (summed) every second; keeps the peaks."""

    def __init__(self, server_pid: int, workers: dict[str, subprocess.Popen]) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.server_pid, self.workers = server_pid, workers
        self.server_peak = self.workers_peak = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(1.0):
            self.server_peak = max(self.server_peak, tree_rss(self.server_pid))
            alive = [w.pid for w in list(self.workers.values()) if w.poll() is None]
            self.workers_peak = max(self.workers_peak, sum(tree_rss(pid) for pid in alive))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def prefect_cli(server: PrefectServer, *args: str, timeout: float = 300) -> None:
    """A `prefect` CLI call against the server from the project folder (where prefect.yaml lives)."""
    done = subprocess.run(
        [prefect_executable(), "--no-prompt", *args], cwd=ROOT, env=server.env(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"prefect {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def start_worker(server: PrefectServer, pool: str, name: str, limit: int, data_dir: Path) -> subprocess.Popen:
    """`prefect worker start --type process` on the pool, in its own process group, with the shared data folder."""
    return server.spawn(
        [prefect_executable(), "worker", "start", "--pool", pool, "--type", "process", "--name", name,
         "--limit", str(limit)],
        f"{name}.log",
        BOARDFLOW_DATA_DIR=str(data_dir),
        PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(data_dir / "prefect-results"),
        PREFECT_WORKER_QUERY_SECONDS="1",  # pick up the next run within a second, not the default 10
        PREFECT_WORKER_HEARTBEAT_SECONDS="5",
        PREFECT_LOGGING_LEVEL="INFO",  # the worker's log says what it picked up and how each run ended
    )  # fmt: skip


def online_workers(server: PrefectServer, pool: str) -> set[str]:
    async def read() -> list:
        async with PrefectClient(server.api_url) as client:
            return await client.read_workers_for_work_pool(pool)

    return {worker.name for worker in asyncio.run(read()) if worker.status == WorkerStatus.ONLINE}


def stop_tree(proc: subprocess.Popen) -> None:
    """Stop a worker's process group, then anything under it that left the group (e.g. an isolated flow run)."""
    below = tree(proc.pid)[1:]
    stop_process(proc)
    for child in below:
        with contextlib.suppress(psutil.Error):
            child.kill()


# -- measuring ------------------------------------------------------------------------------------------------
@dataclass
class Half:
    phase: int
    rows: int
    wall: float = 0.0
    server_cpu: float = 0.0
    workers_cpu: float = 0.0
    bench_cpu: float = 0.0
    by_worker: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    cached: dict[str, int] = field(default_factory=dict)  # step → cache hits
    own: list[float] = field(default_factory=list)  # each completed row's own work: its steps' generator seconds
    load_before: str = ""
    load_after: str = ""


async def submit_and_wait(server: PrefectServer, batch: list[dict], phase: int) -> list[FlowRun]:
    async with PrefectClient(server.api_url) as client:
        ids = await submit_rows(DEPLOYMENT, PIPELINE, batch, tags=["workers-bench", f"phase-{phase}"], client=client)
        return await wait_for_runs(ids, timeout=120 + 60 * len(batch), interval=POLL_SECONDS, client=client)


def run_half(server: PrefectServer, workers: dict[str, subprocess.Popen], phase: int, batch: list[dict]) -> Half:
    half = Half(phase, len(batch), load_before=load())
    alive = {name: proc for name, proc in workers.items() if proc.poll() is None}
    cpu = (tree_cpu(server.proc.pid), sum(tree_cpu(p.pid) for p in alive.values()), own_cpu())
    started = time.time()
    try:
        runs = asyncio.run(submit_and_wait(server, batch, phase))
    except TimeoutError:
        for name in workers:
            print(f"---- {name}.log (tail)\n{server.log_tail(f'{name}.log')}", file=sys.stderr)
        raise
    half.server_cpu = tree_cpu(server.proc.pid) - cpu[0]
    half.workers_cpu = sum(tree_cpu(p.pid) for p in alive.values()) - cpu[1]
    half.bench_cpu = own_cpu() - cpu[2]
    half.load_after = load()
    half.wall = max((r.end_time.timestamp() for r in runs if r.end_time), default=time.time()) - started
    for run in runs:
        worker = run.labels.get("prefect.worker.name", "?")
        half.by_worker[worker] = half.by_worker.get(worker, 0) + 1
        if not run.state.is_completed():
            message = " ".join(str(run.state.message or "").split())  # one line: there may be many
            half.failed.append(f"{run.name} {run.id}: {run.state_name}: {message[:400]}")
            continue
        records = asyncio.run(run_result(run)).model_dump(mode="json")["records"]
        half.own.append(sum(r["compute_seconds"] for r in records if not r["cached"]))
        for record in records:
            if record["cached"]:
                half.cached[record["step"]] = half.cached.get(record["step"], 0) + 1
    return half


def phase_totals(halves: list[Half], phase: int, limit: int) -> dict[str, Any]:
    mine = [h for h in halves if h.phase == phase]
    rows_, wall = sum(h.rows for h in mine), sum(h.wall for h in mine)
    own = [seconds for h in mine for seconds in h.own]
    own_mean = sum(own) / len(own) if own else 0.0
    server, workers = sum(h.server_cpu for h in mine), sum(h.workers_cpu for h in mine)
    by_worker: dict[str, int] = {}
    cached: dict[str, int] = {}
    for h in mine:
        for k, v in h.by_worker.items():
            by_worker[k] = by_worker.get(k, 0) + v
        for k, v in h.cached.items():
            cached[k] = cached.get(k, 0) + v
    return {
        "rows": rows_,
        "wall_s": round(wall, 2),
        "rows_per_min": round(rows_ / wall * 60, 2) if wall else 0.0,
        "own_s_per_row": round(own_mean, 3),
        "overhead_s_per_row": round(wall * phase * limit / rows_ - own_mean, 3) if rows_ else 0.0,
        "server_cpu_s": round(server, 2),
        "workers_cpu_s": round(workers, 2),
        "bench_cpu_s": round(sum(h.bench_cpu for h in mine), 2),
        "server_share": round(server / (server + workers), 4) if server + workers else 0.0,
        "by_worker": by_worker,
        "cached": cached,
        "failed": [f for h in mine for f in h.failed],  # shortened in the RESULT line
    }


def print_half(h: Half) -> None:
    print(
        f"  phase {h.phase} ({h.phase} worker{'s' if h.phase > 1 else ''}), {h.rows} rows: {h.wall:6.1f} s "
        f"= {h.rows / h.wall * 60:5.1f} rows/min; CPU server {h.server_cpu:.1f} s, workers {h.workers_cpu:.1f} s, "
        f"bench {h.bench_cpu:.1f} s; runs per worker {h.by_worker}; {h.load_before} → {h.load_after}",
        flush=True,
    )


# -- main -----------------------------------------------------------------------------------------------------
@dataclass
class Side:
    """One server and everything of its own: database, data folder, workers, RSS sampler, measured halves."""

    db: str
    server: PrefectServer
    data_dir: Path
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    sampler: PeakSampler | None = None
    halves: list[Half] = field(default_factory=list)


def start_side(
    db: str, server: PrefectServer, pool: str, limit: int, work: Path, cleanup: contextlib.ExitStack
) -> Side:
    """The server up, the pool and the deployment on it, its first worker online, a warm-up row run."""
    side = Side(db, server, work / f"data-{db}")
    started = time.perf_counter()
    server.start()
    cleanup.callback(server.stop)
    cleanup.callback(lambda: [stop_tree(proc) for proc in side.workers.values()])
    prefect_cli(server, "work-pool", "create", pool, "--type", "process", "--overwrite")
    # Only `pipeline`: `--all` would also bring the nightly schedule, whose runs these workers would pick up.
    prefect_cli(server, "deploy", "--name", DEPLOYMENT_NAME)
    side.workers[WORKERS[0]] = start_worker(server, pool, WORKERS[0], limit, side.data_dir)
    wait_until(lambda: WORKERS[0] in online_workers(server, pool), 120, f"{WORKERS[0]} online on {db}")
    print(f"{db}: server up, pool {pool!r} and {DEPLOYMENT} deployed, {WORKERS[0]} online: "
          f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    assert server.proc is not None
    side.sampler = PeakSampler(server.proc.pid, side.workers)
    side.sampler.start()
    cleanup.callback(side.sampler.stop)
    warm = run_half(server, side.workers, 0, rows(0, 1))
    if warm.failed:
        raise RuntimeError(f"the warm-up row on {db} failed: {warm.failed}")
    print(f"{db}: warm-up row (not counted): {warm.wall:.1f} s", flush=True)
    return side


def bench(count: int, limit: int, work: Path, databases: tuple[str, ...]) -> int:
    pool = pool_name()
    order = (1, 2, 2, 1)
    sets = {1: rows(1, count), 2: rows(2, count)}
    first = count // 2
    chunks = {1: [sets[1][:first], sets[1][first:]], 2: [sets[2][:first], sets[2][first:]]}
    print(
        f"workers bench: {count} {PIPELINE} rows per phase (512x512 → 320x180, 1–2 s), worker limit {limit}, "
        f"halves in the order {', '.join(map(str, order))} on {' and '.join(databases)}; work folder {work}; "
        f"{load()}",
        flush=True,
    )
    with contextlib.ExitStack() as cleanup:  # every callback runs, in reverse, even when one of them fails
        servers: dict[str, PrefectServer] = {}
        if "sqlite" in databases:
            servers["sqlite"] = PrefectServer(work / "sqlite-home", startup_timeout=180)
        if "postgresql" in databases:
            url = database_url(cleanup.enter_context(LocalPostgres()).url)
            assert url is not None
            print(f"postgresql: PostgreSQL {check_postgres(url)}", flush=True)
            servers["postgresql"] = PrefectServer(
                work / "pg-home", startup_timeout=180, extra_env={"PREFECT_API_DATABASE_CONNECTION_URL": url}
            )
        sides = [start_side(db, server, pool, limit, work, cleanup) for db, server in servers.items()]
        for i, phase in enumerate(order):
            for side in sides if i % 2 == 0 else sides[::-1]:  # the databases take turns going first
                server, workers = side.server, side.workers
                if phase == 2 and WORKERS[1] not in workers:
                    workers[WORKERS[1]] = start_worker(server, pool, WORKERS[1], limit, side.data_dir)
                    wait_until(lambda s=server: set(WORKERS) <= online_workers(s, pool), 120, f"{WORKERS[1]} online")
                if phase == 1 and WORKERS[1] in workers:
                    stop_tree(workers.pop(WORKERS[1]))  # gone before phase 1's rows are submitted
                batch = chunks[phase][0 if i < 2 else 1]
                if batch:
                    side.halves.append(run_half(server, workers, phase, batch))
                    print(f"  {side.db:10s}", end="")
                    print_half(side.halves[-1])
        for side in sides:
            assert side.sampler is not None
            side.sampler.stop()
        results = {side.db: report(side, count, limit) for side in sides}
    return compare(results, count, limit)


def report(side: Side, count: int, limit: int) -> dict[str, Any]:
    halves, sampler = side.halves, side.sampler
    assert sampler is not None
    one, two = phase_totals(halves, 1, limit), phase_totals(halves, 2, limit)
    ratio = two["rows_per_min"] / one["rows_per_min"] if one["rows_per_min"] else 0.0
    server = one["server_cpu_s"] + two["server_cpu_s"]
    total = server + one["workers_cpu_s"] + two["workers_cpu_s"]
    problems = one["failed"] + two["failed"]
    if set(one["by_worker"]) != {WORKERS[0]}:
        problems.append(f"phase 1 ran on {one['by_worker']}, not only {WORKERS[0]}")
    if set(two["by_worker"]) != set(WORKERS):
        problems.append(f"phase 2 did not use both workers: {two['by_worker']}")
    for phase in (one, two):
        hits = {step: n for step, n in phase["cached"].items() if step != "music"}
        if hits:
            problems.append(f"cache hits outside the shared music (rows are meant to be distinct): {hits}")

    print(f"\n{side.db}: {count} {PIPELINE} rows per phase, worker limit {limit}, each row a flow run of {DEPLOYMENT}")
    print(f"  {'phase':<12}{'rows':>6}{'wall s':>9}{'rows/min':>10}{'own s/row':>11}{'above own':>11}"
          f"{'server CPU s':>14}{'workers CPU s':>15}{'server share':>14}{'music cached':>14}"
          "  runs per worker")  # fmt: skip
    for name, p in (("1 worker", one), ("2 workers", two)):
        music = f"{p['cached'].get('music', 0)}/{p['rows']}"
        print(
            f"  {name:<12}{p['rows']:>6}{p['wall_s']:>9.1f}{p['rows_per_min']:>10.1f}{p['own_s_per_row']:>11.2f}"
            f"{p['overhead_s_per_row']:>11.2f}{p['server_cpu_s']:>14.1f}{p['workers_cpu_s']:>15.1f}"
            f"{p['server_share']:>14.1%}{music:>14}  {p['by_worker']}"
        )
    print(f"  rows/minute, 2 workers / 1 worker: {ratio:.2f}x (2 cores)")
    print(
        f"  Prefect server: {server:.1f} s of {total:.1f} s CPU = {server / total if total else 0:.1%} "
        f"(the bench's own API polling, {one['bench_cpu_s'] + two['bench_cpu_s']:.1f} s CPU, is served in it); "
        f"peak RSS server {sampler.server_peak / 2**20:.0f} MiB, workers with their runs "
        f"{sampler.workers_peak / 2**20:.0f} MiB"
    )
    print("  " + ("OK" if not problems else "PROBLEMS:\n    " + "\n    ".join(problems)))
    return {
        "rows": count,
        "limit": limit,
        "one_worker": {**one, "failed": len(one["failed"])},
        "two_workers": {**two, "failed": len(two["failed"])},
        "problems": [problem[:200] for problem in problems[:5]],
        "ratio": round(ratio, 3),
        "server_cpu_share": round(server / total, 4) if total else 0.0,
        "server_peak_rss_mib": round(sampler.server_peak / 2**20, 1),
        "workers_peak_rss_mib": round(sampler.workers_peak / 2**20, 1),
        "halves": [
            {
                "phase": h.phase,
                "rows": h.rows,
                "wall_s": round(h.wall, 2),
                "load_before": h.load_before,
                "load_after": h.load_after,
            }
            for h in halves
        ],  # fmt: skip
        "ok": not problems,
    }


def compare(results: dict[str, dict[str, Any]], count: int, limit: int) -> int:
    print(f"\n{count} rows per phase, worker limit {limit}: rows/min and seconds per row above the rows' own work")
    for db, r in results.items():
        one, two = r["one_worker"], r["two_workers"]
        print(
            f"  {db:10s} 1 worker {one['rows_per_min']:5.1f} rows/min ({one['overhead_s_per_row']:.2f} s/row above), "
            f"2 workers {two['rows_per_min']:5.1f} ({two['overhead_s_per_row']:.2f} s/row above) = {r['ratio']:.2f}x"
        )
    if {"sqlite", "postgresql"} <= set(results):
        for key, name in (("one_worker", "1 worker"), ("two_workers", "2 workers")):
            a, b = results["postgresql"][key]["rows_per_min"], results["sqlite"][key]["rows_per_min"]
            print(f"  PostgreSQL / SQLite rows/min, {name}: {a / b if b else 0:.2f}x")
    print(RESULT_MARK + json.dumps(results), flush=True)
    return 0 if all(r["ok"] for r in results.values()) else 1


def interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8, help="rows per phase (default 8; at least 2)")
    parser.add_argument("--limit", type=int, default=1, help="flow runs at a time per worker (default 1)")
    parser.add_argument(
        "--databases", default=",".join(DATABASES), help="the servers' databases, in turn (default sqlite,postgresql)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data) even when all went well")
    args = parser.parse_args()
    if args.rows < 2:
        parser.error("--rows must be at least 2 (each phase runs in two halves)")
    databases = tuple(d.strip() for d in args.databases.split(",") if d.strip())
    if not databases or set(databases) - set(DATABASES):
        parser.error(f"--databases takes {' and/or '.join(DATABASES)}, comma-separated; got {args.databases!r}")
    for name in FOREIGN_ENV:
        os.environ.pop(name, None)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the finally blocks stop every process we started.
    signal.signal(signal.SIGTERM, interrupted)
    work = Path(tempfile.mkdtemp(prefix="boardflow-workers-bench-"))
    code = 1
    try:
        code = bench(args.rows, args.limit, work, databases)
        return code
    except KeyboardInterrupt as stop:
        print(f"interrupted ({stop or 'Ctrl-C'}); every process the bench started is stopped", flush=True)
        return 130
    finally:
        if args.keep or code:
            print(f"work folder kept (server and worker logs in prefect-home/): {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
