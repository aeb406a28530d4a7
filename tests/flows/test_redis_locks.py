"""Cache locks in Redis (BOARDFLOW_LOCKS): leases that lapse when a holder dies, shared by separate processes.

Every test talks to a real redis-server on 127.0.0.1; "another machine" is another process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import redis

from flows.engine.locks import check_locks, lock_manager
from flows.engine.redis_locks import KEY_PREFIX, LockWaitTimeout, RedisLeaseLockManager
from generators.errors import ConfigurationError

HOLD_IN_CHILD = textwrap.dedent(
    """
    import sys, time
    from flows.engine.redis_locks import RedisLeaseLockManager
    m = RedisLeaseLockManager(sys.argv[1], lease_seconds=float(sys.argv[3]))
    m.acquire_lock(sys.argv[2], holder="child")
    print("held", flush=True)
    time.sleep(120)
    """
)

WAIT_IN_CHILD = textwrap.dedent(
    """
    import sys
    from flows.engine.redis_locks import RedisLeaseLockManager
    m = RedisLeaseLockManager(sys.argv[1])
    print("waiting", flush=True)
    m.acquire_lock(sys.argv[2], holder="waiter")
    print("acquired", flush=True)
    """
)


def child(script: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": "."}
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line in ("held", "waiting"), f"child said {line!r}"
    return proc


def test_an_async_acquire_is_given_back_by_the_sync_release_prefect_uses(redis_url):
    # Prefect 3.9.1's async transactions take the lock with aacquire_lock and release it with release_lock.
    first, second = RedisLeaseLockManager(redis_url), RedisLeaseLockManager(redis_url, wait_seconds=0.3)
    asyncio.run(first.aacquire_lock("k", holder="one"))
    with pytest.raises(LockWaitTimeout):
        second.acquire_lock("k", holder="two")
    first.release_lock("k", holder="one")
    assert second.acquire_lock("k", holder="two", acquire_timeout=1)
    second.release_lock("k", holder="two")
    assert not first.is_locked("k")


def test_a_wait_that_times_out_fails_naming_the_holder_instead_of_running_unlocked(redis_url):
    holder = RedisLeaseLockManager(redis_url)
    holder.acquire_lock("k", holder="one")
    waiter = RedisLeaseLockManager(redis_url, wait_seconds=0.2)
    with pytest.raises(LockWaitTimeout) as caught:
        asyncio.run(waiter.aacquire_lock("k", holder="two"))
    message = str(caught.value)
    assert f"pid {os.getpid()}" in message and redis_url in message and "BOARDFLOW_LOCK_WAIT_SECONDS" in message
    holder.release_lock("k", holder="one")


def test_a_living_holder_keeps_its_lease_past_its_length(redis_url):
    holder = RedisLeaseLockManager(redis_url, lease_seconds=0.6)
    holder.acquire_lock("k", holder="one")
    time.sleep(2.0)  # more than three leases: only renewal keeps it
    assert holder.is_locked("k") and holder.is_lock_holder("k", "one")
    ttl_ms = redis.Redis.from_url(redis_url).pttl(KEY_PREFIX + "k")
    assert 0 < ttl_ms <= 600
    holder.release_lock("k", holder="one")
    assert not holder.is_locked("k")


def test_a_sigkilled_holders_lock_lapses_within_one_lease(redis_url):
    holder = child(HOLD_IN_CHILD, redis_url, "k", "1.5")
    mine = RedisLeaseLockManager(redis_url)
    assert mine.is_locked("k") and not mine.is_lock_holder("k", "me")
    holder.kill()
    holder.wait()
    started = time.monotonic()
    assert mine.acquire_lock("k", holder="me", acquire_timeout=10)
    assert time.monotonic() - started < 1.5 + 0.5
    mine.release_lock("k", holder="me")


def test_sigterm_ends_a_waiter_at_once(redis_url):
    holder = RedisLeaseLockManager(redis_url)
    holder.acquire_lock("k", holder="one")
    waiter = child(WAIT_IN_CHILD, redis_url, "k")
    assert waiter.poll() is None
    started = time.monotonic()
    waiter.send_signal(signal.SIGTERM)
    waiter.wait(5)
    assert time.monotonic() - started < 2 and waiter.returncode == -signal.SIGTERM
    holder.release_lock("k", holder="one")


def test_only_the_holder_releases(redis_url):
    holder, other = RedisLeaseLockManager(redis_url), RedisLeaseLockManager(redis_url)
    holder.acquire_lock("k", holder="one")
    with pytest.raises(ValueError, match="not held by"):
        other.release_lock("k", holder="two")
    assert holder.is_locked("k")
    holder.release_lock("k", holder="one")


def test_boardflow_locks_selects_redis_and_a_redis_that_is_down_is_named(redis_url, monkeypatch):
    monkeypatch.setenv("BOARDFLOW_LOCKS", redis_url)
    assert isinstance(lock_manager(), RedisLeaseLockManager)
    check_locks()
    monkeypatch.setenv("BOARDFLOW_LOCKS", "redis://127.0.0.1:1/0")
    with pytest.raises(ConfigurationError) as caught:
        check_locks()
    assert "redis://127.0.0.1:1/0" in str(caught.value) and "unset BOARDFLOW_LOCKS" in (caught.value.hint or "")
    monkeypatch.setenv("BOARDFLOW_LOCKS", "postgres://x")
    with pytest.raises(ConfigurationError, match="not a Redis URL"):
        lock_manager()
    monkeypatch.setenv("BOARDFLOW_LOCKS", redis_url)
    monkeypatch.setenv("BOARDFLOW_LOCK_LEASE_SECONDS", "soon")
    with pytest.raises(ConfigurationError, match="BOARDFLOW_LOCK_LEASE_SECONDS"):
        lock_manager()


def test_a_step_holding_its_lock_when_redis_goes_away_keeps_its_work_and_the_next_lock_is_refused_naming_it():
    from deployments.local_redis import LocalRedis

    with LocalRedis() as server:
        mine = RedisLeaseLockManager(server.url, lease_seconds=1)
        mine.acquire_lock("k", holder="one")
        server.stop()
        # Prefect asks before it saves the step's result, then releases: neither may fail the finished step.
        assert mine.is_lock_holder("k", "one")
        mine.release_lock("k", holder="one")
        with pytest.raises(ConfigurationError) as caught:
            mine.is_lock_holder("k", "two")
        assert f"Redis at {server.url} (BOARDFLOW_LOCKS) does not answer" in str(caught.value)
        with pytest.raises(ConfigurationError, match="does not answer"):
            mine.acquire_lock("next", holder="one", acquire_timeout=1)
        server.start()
        assert mine.acquire_lock("next", holder="one", acquire_timeout=1)
        mine.release_lock("next", holder="one")


ONE_STEP = """\
name: shared-note
steps:
  note:
    generator: local/text-template
    inputs: {template: "made once, whichever machine gets there first"}
"""


def waiting_pids(url: str, pids: set[int]) -> set[int]:
    """The processes among `pids` polling for a lock: their named connection's last command is a try to take it
    (a pre-flight check only pings)."""
    clients = redis.Redis.from_url(url).client_list()
    return {
        pid
        for pid in pids
        if any(c.get("name", "").endswith(f":{pid}") and c.get("cmd") in ("get", "set") for c in clients)
    }


async def lock_key_of(spec_path, store_url: str) -> str:
    from flows.engine.caching import record_key
    from flows.pipeline import PipelineSpec
    from flows.pipeline.flow import plan_pipeline
    from generators.storage import open_store

    store = open_store(store_url)
    call = (await plan_pipeline(PipelineSpec.resolve(str(spec_path)), {}, store=store)).call("note", None)
    assert call is not None and call.key is not None
    return record_key(store.root_url, call.key)


def start_runs(tmp_path, redis_url: str, prefect_api: str, machines: int) -> tuple[list[subprocess.Popen], str]:
    """`boardflow run` of ONE_STEP on `machines` machines (own data folders, one store), all waiting at the step's
    lock, which this test holds; returns them and the lock key."""
    spec = tmp_path / "shared-note.yaml"
    spec.write_text(ONE_STEP)
    store_url = (tmp_path / "shared-store").as_uri()
    key = asyncio.run(lock_key_of(spec, store_url))
    env = {**os.environ, "BOARDFLOW_LOCKS": redis_url, "BOARDFLOW_STORE": store_url, "PREFECT_API_URL": prefect_api}
    RedisLeaseLockManager(redis_url).acquire_lock(key, holder="the test")
    boardflow = os.path.join(os.path.dirname(sys.executable), "boardflow")
    runs = [
        subprocess.Popen(
            [boardflow, "run", str(spec), "--json"],
            env={**env, "BOARDFLOW_DATA_DIR": str(tmp_path / f"machine-{i}")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(machines)
    ]
    deadline = time.monotonic() + 180
    while waiting_pids(redis_url, {p.pid for p in runs}) != {p.pid for p in runs}:
        assert all(p.poll() is None for p in runs), [p.communicate() for p in runs]
        assert time.monotonic() < deadline, "the runs never reached the lock"
        time.sleep(0.2)
    return runs, key


def test_two_machines_with_their_own_data_folders_make_a_shared_step_once(redis_url, prefect_api, tmp_path):
    import json

    runs, key = start_runs(tmp_path, redis_url, prefect_api, machines=2)  # they meet at the lock, not in turn
    RedisLeaseLockManager(redis_url).release_lock(key, holder="the test")
    outputs = [p.communicate(timeout=180) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outputs
    records = [json.loads(out)["records"][0] for out, _ in outputs]
    assert sorted(r["cached"] for r in records) == [False, True], records
    assert [json.loads(out)["outputs"] for out, _ in outputs][0] == json.loads(outputs[1][0])["outputs"]


def test_sigterm_ends_a_run_waiting_for_another_machines_lock(redis_url, prefect_api, tmp_path):
    (run,), key = start_runs(tmp_path, redis_url, prefect_api, machines=1)
    started = time.monotonic()
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=30)
    assert time.monotonic() - started < 10, "the waiter ignored SIGTERM"
    assert run.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "Stopped." in err and "resume" in err, err
    import re

    import httpx

    ids = re.findall(r"flow-run/([0-9a-f-]{36})", out + err)
    assert ids, err
    state = httpx.get(f"{prefect_api}/flow_runs/{ids[-1]}").json()["state"]
    assert state["type"] == "CANCELLED" and "SIGTERM" in state["message"], state
    RedisLeaseLockManager(redis_url).release_lock(key, holder="the test")
