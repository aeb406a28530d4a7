"""Two "machines" on Prefect's distributed parts: workers with their own data folders, one Prefect server on
PostgreSQL, Redis cache locks (BOARDFLOW_LOCKS), one S3 store. Every server is real and on loopback.

A machine here is a worker with its own BOARDFLOW_DATA_DIR and PREFECT_HOME (so its own file locks and local
state); what they share is only what separate machines would: the server,
Redis and the S3 store. Each worker polls the pool's default queue and a queue of its own, so a run can be
pinned to one machine. Executions are counted from the runs' cost records, the store's result index and
the counting test generator, never from timing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pandas as pd
import pytest
import redis
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import arun_deployment

from deployments.database import ENV as DATABASE_ENV
from deployments.database import check_postgres, database_url
from deployments.fanout import DEPLOYMENT, read_runs, run_result, wait_for_runs
from deployments.local_postgres import LocalPostgres, postgres_bindir
from deployments.local_redis import LocalRedis, redis_executable
from deployments.local_server import PrefectServer, free_port, prefect_executable, wait_until
from flows.engine.redis_locks import KEY_PREFIX
from tests.deployments.kit import POOL, ROOT, on, online_workers, run_cli, start_moto
from tests.deployments.slow_plugin import HELD_SPEC, SLOW_ENV, TWO_STEPS_SPEC, plugin_folder
from tests.flows.kit import COUNTER_ENV

pytestmark = [
    pytest.mark.slow,
    pytest.mark.servers,
    pytest.mark.skipif(postgres_bindir() is None, reason="PostgreSQL is not installed (`make test` installs it)"),
    pytest.mark.skipif(redis_executable() is None, reason="redis-server is not installed (`make test` installs it)"),
]

BUCKET, PREFIX = "boardflow-machines", "studio"
MACHINES = ("machine-a", "machine-b")
LEASE_SECONDS = 3.0  # how soon a killed holder's lock lapses (BOARDFLOW_LOCK_LEASE_SECONDS)
# How long test/slow works on each machine: on machine-a (the holder in the test) long enough to start two waiters
# on machine-b and kill it while it holds the lock; on machine-b short, once it takes the step over.
SLOW_SECONDS = {"machine-a": 120.0, "machine-b": 2.0}
BOARDFLOW = str(Path(sys.executable).with_name("boardflow"))

# Eight slides: four pictures, each under two camera moves, and two moods. Shared steps: a picture is made
# once for its two rows, a music bed once for its four. Unique steps: 4 images, 2 beds, 8 clips, 8 slides.
PROMPTS = [("a lighthouse at dawn", "calm"), ("a harbour in mist", "calm"),
           ("a storm over the sea", "tense"), ("a dark forest road", "tense")]  # fmt: skip
ROWS = [
    {"prompt": prompt, "mood": mood, "motion": motion, "duration": 1.0, "image_size": "512x512",
     "resolution": "320x180", "fps": 24, "seed": 7}
    for prompt, mood in PROMPTS
    for motion in ("zoom-in", "pan-left")
]  # fmt: skip
UNIQUE_STEPS = {"image": 4, "music": 2, "clip": 8, "slide": 8}


@dataclass
class Studio:
    """The shared servers and the two machines' workers."""

    tmp: Path
    server: PrefectServer
    pg: LocalPostgres
    locks: LocalRedis
    s3_endpoint: str
    plugin: Path
    counter: Path
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def machine_env(self, name: str, **extra: str) -> dict[str, str]:
        """What one machine's processes see: its own folders; the shared server, Redis and S3 store."""
        home = self.tmp / name
        (home / "prefect-home").mkdir(parents=True, exist_ok=True)
        env = self.server.env()
        env.pop(DATABASE_ENV, None)  # only the server talks to PostgreSQL
        env.update(
            PREFECT_HOME=str(home / "prefect-home"),
            BOARDFLOW_DATA_DIR=str(home / "data"),
            PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(home / "data" / "prefect-results"),
            BOARDFLOW_STORE=f"s3://{BUCKET}/{PREFIX}",
            BOARDFLOW_S3_ENDPOINT_URL=self.s3_endpoint,
            BOARDFLOW_LOCKS=self.locks.url,
            BOARDFLOW_LOCK_LEASE_SECONDS=str(LEASE_SECONDS),
            PYTHONPATH=os.pathsep.join([str(self.plugin), str(ROOT)]),
            **{COUNTER_ENV: str(self.counter), SLOW_ENV: str(SLOW_SECONDS.get(name, 0))},
        )
        env.update(extra)
        return env

    def start_worker(self, name: str) -> None:
        args = [prefect_executable(), "worker", "start", "--pool", POOL, "--type", "process", "--name", name,
                "--limit", "2", "--work-queue", "default", "--work-queue", name]  # fmt: skip
        env = self.machine_env(name, PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_HEARTBEAT_SECONDS="5",
                               PREFECT_LOGGING_LEVEL="INFO")  # fmt: skip
        with open(self.tmp / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
        self.workers[name] = proc
        self.server.children.append(proc)

    def logs(self) -> str:
        return "\n----\n".join((self.tmp / f"{m}.log").read_text(errors="replace")[-3000:] for m in MACHINES)

    def executions(self, text: str) -> int:
        """How many times test/slow started on `text`, on any machine."""
        lines = self.counter.read_text().splitlines() if self.counter.exists() else []
        return lines.count(f"test/slow {text}")


@pytest.fixture(scope="module")
def studio(tmp_path_factory) -> Iterator[Studio]:
    tmp = tmp_path_factory.mktemp("machines")
    with LocalPostgres() as pg, LocalRedis() as locks:
        check_postgres(pg.url)  # what `boardflow server --database` does first: connect, enable pg_trgm
        url = database_url(pg.url)
        assert url is not None
        with PrefectServer(tmp / "server-home", extra_env={DATABASE_ENV: url}) as server:
            run_cli(server, "work-pool", "create", POOL, "--type", "process", "--overwrite")
            for name in MACHINES:
                run_cli(server, "work-queue", "create", name, "--pool", POOL)
            run_cli(server, "deploy", "--name", "pipeline")
            studio = Studio(tmp, server, pg, locks, start_moto(server, BUCKET), plugin_folder(tmp), tmp / "runs.txt")
            for name in MACHINES:
                studio.start_worker(name)
            wait_until(lambda: on(server, lambda c: online_workers(c, POOL)) >= set(MACHINES), 90, "both workers")
            with (
                pytest.MonkeyPatch.context() as env
            ):  # the runs' results are read from the bucket, as any machine would
                env.setenv("BOARDFLOW_S3_ENDPOINT_URL", studio.s3_endpoint)
                yield studio


def submit(studio: Studio, pipeline: str, rows: list[dict[str, Any]], tag: str) -> list[FlowRun]:
    """The rows as `boardflow batch --on-workers` from a third machine: each row a run of the pipeline deployment,
    spread over whichever workers take them; the batch's results table says which run was which row."""
    rows_csv, results = studio.tmp / f"{tag}-rows.csv", studio.tmp / f"{tag}-results"
    pd.DataFrame(rows).to_csv(rows_csv, index=False)
    done = boardflow(studio, "batch", pipeline, str(rows_csv), "--on-workers", "--concurrency", "4",
                     "--out", str(results), timeout=300)  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:] + studio.logs()
    table = pd.read_csv(results.with_suffix(".csv")).sort_values("row")
    assert list(table["status"]) == ["completed"] * len(rows), table.to_string()
    ids = [uuid.UUID(run_id) for run_id in table["flow_run_id"]]
    return on(studio.server, lambda c: read_runs(ids, client=c))


def pin(studio: Studio, pipeline: str, row: dict[str, Any], machine: str, name: str) -> uuid.UUID:
    """One row as a run of the pipeline deployment on `machine`'s own queue; returns its id at once."""

    async def go(client):
        parameters = {"pipeline": pipeline, "params": row}
        run = await arun_deployment(DEPLOYMENT, client=client, parameters=parameters, work_queue_name=machine,
                                    flow_run_name=name, timeout=0)  # fmt: skip
        return run.id

    return on(studio.server, go)


def finished(studio: Studio, ids: list[uuid.UUID], timeout: float = 120) -> list[FlowRun]:
    try:
        return on(studio.server, lambda c: wait_for_runs(ids, timeout=timeout, client=c))
    except TimeoutError:
        print(studio.logs())
        raise


def machine_of(run: FlowRun) -> str | None:
    return run.labels.get("prefect.worker.name")


def records(run: FlowRun) -> list[dict[str, Any]]:
    return asyncio.run(run_result(run)).model_dump(mode="json")["records"]


def index_keys(studio: Studio) -> set[str]:
    """The result index in the shared store: one record per step made, by cache key."""
    s3 = boto3.client("s3", endpoint_url=studio.s3_endpoint)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/results/")
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def prefect_records(studio: Studio) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=studio.s3_endpoint)
    found = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/prefect-results/")
    return [obj["Key"] for obj in found.get("Contents", [])]


def test_a_batch_over_two_machines_makes_every_step_once_and_either_machine_reuses_it(studio: Studio):
    before = index_keys(studio)
    first = submit(studio, "slideshow", ROWS, "spread")
    failed = [(r.name, r.state_name, r.state.message) for r in first if not r.state.is_completed()]
    assert not failed, (failed, studio.logs())
    ran_on = [machine_of(r) for r in first]
    assert set(ran_on) == set(MACHINES), f"the rows did not spread over both machines: {ran_on}"

    made: dict[str, int] = {}
    for run in first:
        for rec in records(run):
            made[rec["step"]] = made.get(rec["step"], 0) + (not rec["cached"])
    assert made == UNIQUE_STEPS, f"steps made (not cached) across both machines: {made}"
    assert len(index_keys(studio) - before) == sum(UNIQUE_STEPS.values())
    for name in MACHINES:  # Prefect's own records went to the shared store too, none to a machine's data folder
        assert not (studio.tmp / name / "data" / "prefect-results").exists(), name
    assert prefect_records(studio), "no Prefect result records in the bucket"

    # Each row again, pinned to the machine that did not run it: wholly cached, whoever made what.
    other = {MACHINES[0]: MACHINES[1], MACHINES[1]: MACHINES[0]}
    picks = [i for m in MACHINES for i in [j for j, w in enumerate(ran_on) if w == m][:1]]
    ids = [pin(studio, "slideshow", ROWS[i], other[ran_on[i]], f"again · row {i + 1}") for i in picks]
    again = finished(studio, ids)
    for i, run in zip(picks, again, strict=True):
        assert run.state.is_completed(), (run.name, run.state.message)
        assert machine_of(run) == other[ran_on[i]], (run.name, machine_of(run))
        recs = records(run)
        assert recs and all(r["cached"] for r in recs), (i + 1, recs)
        assert sum(float(r["actual_usd"]) for r in recs) == 0
    assert len(index_keys(studio) - before) == sum(UNIQUE_STEPS.values())


def lock_holder(studio: Studio) -> dict[str, Any] | None:
    client = redis.Redis.from_url(studio.locks.url)
    for key in client.scan_iter(f"{KEY_PREFIX}*"):
        value = client.get(key)
        if value is not None:
            return json.loads(value)
    return None


def waiting_pids(studio: Studio, besides: int) -> list[int]:
    """Processes other than `besides` trying to take a lock: their named connection's last command is a GET or SET
    (a holder renews with EVALSHA)."""
    found = []
    for c in redis.Redis.from_url(studio.locks.url).client_list():
        name = c.get("name", "")
        if name.startswith("boardflow:") and c.get("cmd") in ("get", "set"):
            pid = int(name.rsplit(":", 1)[1])
            if pid != besides:
                found.append(pid)
    return sorted(set(found))


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_a_sigkilled_lock_holder_is_taken_over_within_the_lease_and_sigterm_ends_a_waiter(studio: Studio, tmp_path):
    spec = tmp_path / "held.yaml"
    spec.write_text(HELD_SPEC)
    text = f"held {uuid.uuid4().hex[:8]}"
    row = {"text": text}
    holder_run = pin(studio, str(spec), row, "machine-a", "holder")
    holder = wait_until(lambda: studio.executions(text) == 1 and lock_holder(studio), 60, "machine-a holding the lock")
    waiter_runs = [pin(studio, str(spec), row, "machine-b", f"waiter {n}") for n in (1, 2)]
    waiters = wait_until(lambda: len(w := waiting_pids(studio, holder["pid"])) == 2 and w, 60, "two waiters")

    # SIGTERM ends a waiter promptly (it is polling, not blocked).
    os.kill(waiters[0], signal.SIGTERM)
    started = time.monotonic()
    wait_until(lambda: gone(waiters[0]), 10, "the SIGTERMed waiter ending")
    assert time.monotonic() - started < 5

    # SIGKILL the holder mid-step: its lease lapses and the other waiter takes over, once.
    os.kill(holder["pid"], signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: studio.executions(text) == 2, LEASE_SECONDS + 10, "a waiter taking the step over")
    assert time.monotonic() - killed <= LEASE_SECONDS + 2, "the takeover took longer than the lease"

    runs = finished(studio, [holder_run, *waiter_runs], timeout=90)
    states = {r.name: r.state_name for r in runs}
    assert not runs[0].state.is_completed(), states  # killed
    assert sorted(r.state.is_completed() for r in runs[1:]) == [False, True], states
    assert studio.executions(text) == 2, "the step ran more than once more after its holder was killed"
    assert lock_holder(studio) is None, "a lock was left behind"

    # Nothing is stuck: the same row on the killed holder's machine is a cache hit.
    (again,) = finished(studio, [pin(studio, str(spec), row, "machine-a", "after")])
    assert again.state.is_completed() and all(r["cached"] for r in records(again)), again.state.message
    assert studio.executions(text) == 2


def boardflow(studio: Studio, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """A `boardflow` command on a third machine (its own data folder) against the shared services."""
    full = studio.machine_env("machine-c", **{SLOW_ENV: "0", **env})
    return subprocess.run([BOARDFLOW, *args], env=full, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def start_boardflow(studio: Studio, *args: str, **env: str) -> subprocess.Popen:
    full = studio.machine_env("machine-c", **env)
    return subprocess.Popen([BOARDFLOW, *args], env=full, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def said(text: str) -> str:
    """What a command printed, its lines unwrapped (the console wraps long messages)."""
    return " ".join(text.split())


def test_a_service_down_at_the_start_is_named_before_anything_runs(studio: Studio, tmp_path):
    spec = tmp_path / "held.yaml"
    spec.write_text(HELD_SPEC)
    rows = tmp_path / "rows.csv"
    rows.write_text("text\nfirst row\n")
    dead = f"redis://127.0.0.1:{free_port()}/0"
    for args in (["run", str(spec), "-p", "text=never"], ["batch", str(spec), str(rows)]):
        done = boardflow(studio, *args, BOARDFLOW_LOCKS=dead)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert f"Redis at {dead} (BOARDFLOW_LOCKS) does not answer" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr + done.stdout, done.stderr

    studio.pg.halt()
    try:
        done = boardflow(studio, "run", str(spec), "-p", "text=never")
        assert done.returncode == 1, (done.stdout, done.stderr)
        told = said(done.stderr)
        assert f"server at {studio.server.api_url} (PREFECT_API_URL) answers, but its database does not" in told, told
        assert "Traceback" not in done.stderr + done.stdout, done.stderr
        port = free_port()
        done = boardflow(studio, "server", "--port", str(port), "--database", studio.pg.url, "--media-port", "0")
        assert done.returncode == 1, (done.stdout, done.stderr)
        told = said(done.stderr)
        assert "No PostgreSQL server answers at" in told and "pg-test-secret" not in told, told
    finally:
        studio.pg.resume()
    wait_until(lambda: httpx.get(f"{studio.server.api_url}/ready", timeout=5).status_code == 200, 60, "the server")
    assert studio.executions("never") == 0


def outage_mid_step(studio: Studio, spec: Path, text: str, down, up) -> tuple[int, str]:
    """`boardflow run` of `spec`; once its first step works (holding its lock), `down()`, and `up()` once the run
    has ended. Returns its exit code and all it printed."""
    run = start_boardflow(studio, "run", str(spec), "-p", f"text={text}", **{SLOW_ENV: "4"})
    wait_until(lambda: studio.executions(text) == 1 or run.poll() is not None, 90, "the first step starting")
    down()
    try:
        out, err = run.communicate(timeout=120)
    finally:
        up()
    assert "Traceback" not in out + err, out + err
    return run.returncode, said(out + err)


def rerun(studio: Studio, spec: Path, text: str) -> dict[str, bool]:
    """The same run again, once the service is back: {step: cached}."""
    done = boardflow(studio, "run", str(spec), "-p", f"text={text}", "--json")
    assert done.returncode == 0, done.stderr
    return {r["step"]: r["cached"] for r in json.loads(done.stdout)["records"]}


def test_redis_down_mid_run_fails_the_run_clearly_and_a_rerun_after_recovery_is_cached(studio: Studio, tmp_path):
    spec = tmp_path / "held-then-next.yaml"
    spec.write_text(TWO_STEPS_SPEC)
    text = f"redis-outage {uuid.uuid4().hex[:8]}"
    code, told = outage_mid_step(studio, spec, text, studio.locks.stop, studio.locks.start)
    assert code == 1, told
    # The first step's work is kept; the next one could not take its lock and says why.
    assert f"next: failed: Redis at {studio.locks.url} (BOARDFLOW_LOCKS) does not answer" in told, told
    assert (studio.executions(text), studio.executions(f"{text} next")) == (1, 0)

    assert rerun(studio, spec, text) == {"hold": True, "next": False}
    assert (studio.executions(text), studio.executions(f"{text} next")) == (1, 1)


def test_postgresql_down_mid_run_fails_the_run_clearly_and_a_rerun_after_recovery_is_cached(studio: Studio, tmp_path):
    spec = tmp_path / "held.yaml"
    spec.write_text(HELD_SPEC)
    text = f"database-outage {uuid.uuid4().hex[:8]}"
    # The Prefect server stays up; its database goes while the step works.
    code, told = outage_mid_step(studio, spec, text, studio.pg.halt, studio.pg.resume)
    assert code == 1, told
    assert f"The Prefect server at {studio.server.api_url} lost its database mid-run" in told, told
    assert "run the same command again" in told, told
    wait_until(lambda: httpx.get(f"{studio.server.api_url}/ready", timeout=5).status_code == 200, 60, "the database")

    assert rerun(studio, spec, text) == {"hold": True}
    assert studio.executions(text) == 1
