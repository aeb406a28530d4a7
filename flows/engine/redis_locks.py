"""Cache locks shared by several machines: leases in Redis that lapse when their holder dies.

Selected with `BOARDFLOW_LOCKS=redis://host:6379/0` (see `locks.lock_manager`). Why not
`prefect_redis.RedisLockManager`: under Prefect 3.9.1 an async transaction takes its lock with
`aacquire_lock` but gives it back with the *sync* `release_lock`, and prefect-redis's sync release
then never deletes the key that its async client set, so a second process waits forever. Its keys
also carry no expiry unless the caller passes a hold timeout (Prefect never does), so a SIGKILLed
holder's lock stays for good.

Here every lock is a lease: `SET key value NX PX lease` taken by one client for both paths, kept
alive by a renewer thread while its holder lives, and deleted only by its holder (a compare-and-delete
script). A holder killed by SIGKILL, OOM or a power cut stops renewing; its lock lapses within one
lease. Waiting polls with short sleeps, so it never blocks an event loop, and a signal (SIGTERM,
Ctrl-C) ends a waiter at once. A wait longer than the acquire timeout fails the step with an error
that names the holder, instead of returning False (which Prefect's transactions ignore, running the
step unlocked).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

import redis
from prefect.locking.protocol import LockManager

from generators.errors import BoardflowError, ConfigurationError

log = logging.getLogger("boardflow.locks")

DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_WAIT_SECONDS = 6 * 3600.0  # a long step on another machine is normal; a day-long wait is not
POLL_SECONDS = 0.1
KEY_PREFIX = "boardflow:lock:"

# Delete / extend the key only while it still holds our value: a lapsed lease another holder took is theirs.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)


class LockWaitTimeout(BoardflowError):
    """A step waited longer than the acquire timeout for a lock another process holds."""

    default_hint = (
        "Another run is making the same result. Wait for it, or raise BOARDFLOW_LOCK_WAIT_SECONDS; if that run "
        "is gone, its lock lapses within BOARDFLOW_LOCK_LEASE_SECONDS."
    )


class RedisLeaseLockManager(LockManager):
    def __init__(
        self,
        url: str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> None:
        if lease_seconds <= 0 or wait_seconds <= 0:
            raise ConfigurationError(f"Lock lease and wait must be positive (got {lease_seconds}, {wait_seconds}).")
        self.url = url
        self.lease_ms = int(lease_seconds * 1000)
        self.wait_seconds = wait_seconds
        # Named, so `redis-cli client list` shows which machine and process each connection is.
        name = f"boardflow:{socket.gethostname()}:{os.getpid()}"
        self._client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10, client_name=name)
        self._release = self._client.register_script(_RELEASE)
        self._renew = self._client.register_script(_RENEW)
        self._held: dict[str, tuple[str, threading.Event]] = {}  # key -> (stored value, stop renewing)
        self._mutex = threading.Lock()

    # -- the LockManager protocol --------------------------------------------------------------------------
    def acquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        deadline = self._deadline(acquire_timeout)
        while not self._try(key, holder, hold_timeout):
            if time.monotonic() >= deadline:
                self._give_up(key, acquire_timeout)
            time.sleep(POLL_SECONDS)  # interrupted by signals: SIGTERM or Ctrl-C end a waiter at once
        return True

    async def aacquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        deadline = self._deadline(acquire_timeout)
        while not await asyncio.to_thread(self._try, key, holder, hold_timeout):
            if time.monotonic() >= deadline:
                self._give_up(key, acquire_timeout)
            await asyncio.sleep(POLL_SECONDS)
        return True

    def release_lock(self, key: str, holder: str) -> None:
        with self._mutex:
            held = self._held.pop(key, None)
        if held is not None:
            held[1].set()  # stop renewing, whatever happens below
        value = held[0] if held is not None and _holder_of(held[0]) == holder else self._value_if_held(key, holder)
        if value is None:
            raise ValueError(f"Cannot release lock {key!r}: it is not held by {holder!r}.")
        try:
            released = self._release(keys=[_redis_key(key)], args=[value])
        except redis.RedisError as exc:
            # The step's work is done and saved; failing it now would throw that away. Unrenewed, the lease
            # lapses by itself, and whoever waits for it then finds the result in the cache.
            log.warning(
                "could not release the lock on %s: Redis at %s (BOARDFLOW_LOCKS) does not answer (%s); it lapses by "
                "itself within %g s",
                key, self.url, exc, self.lease_ms / 1000,
            )  # fmt: skip
            return
        if not released:
            log.warning("the lease on %s had lapsed before its release: another process may have run it too", key)

    def _value_if_held(self, key: str, holder: str) -> str | None:
        value = self._call(self._client.get, _redis_key(key))
        return value.decode() if value is not None and _holder_of(value.decode()) == holder else None

    def is_locked(self, key: str) -> bool:
        return bool(self._call(self._client.exists, _redis_key(key)))

    def is_lock_holder(self, key: str, holder: str) -> bool:
        try:
            value = self._client.get(_redis_key(key))
        except redis.RedisError as exc:
            with self._mutex:
                held = self._held.get(key)
            if held is None or _holder_of(held[0]) != holder:
                raise self._unreachable(exc) from None
            # Prefect asks before it saves the result of a step this process locked: the work is done, so save it
            # rather than fail the step. The lease was ours and lapses by itself if Redis kept it.
            log.warning("Redis at %s (BOARDFLOW_LOCKS) does not answer (%s); %s was locked here", self.url, exc, key)
            return True
        return value is not None and _holder_of(value.decode()) == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = self._deadline(timeout)
        while self.is_locked(key):
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = self._deadline(timeout)
        while await asyncio.to_thread(self.is_locked, key):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_SECONDS)
        return True

    # -- leases ------------------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise a ConfigurationError naming the URL when Redis does not answer."""
        self._call(self._client.ping)

    def holder_info(self, key: str) -> dict[str, Any] | None:
        """What the current holder of `key` wrote: holder, host, pid, step, since (None when free)."""
        value = self._call(self._client.get, _redis_key(key))
        if value is None:
            return None
        try:
            info = json.loads(value)
        except ValueError:
            return {"holder": value.decode(errors="replace")}
        return info if isinstance(info, dict) else {"holder": str(info)}

    def _try(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        if self.is_lock_holder(key, holder):
            return True
        value = json.dumps(
            {
                "holder": holder,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "step": _current_step(),
                "since": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        lease_ms = int(hold_timeout * 1000) if hold_timeout else self.lease_ms
        if not self._call(self._client.set, _redis_key(key), value, nx=True, px=lease_ms):
            return False
        stop = threading.Event()
        with self._mutex:
            self._held[key] = (value, stop)
        if not hold_timeout:  # a caller's own hold timeout is a hard limit; ours is renewed while we live
            threading.Thread(target=self._keep, args=(key, value, stop), name=f"lease {key[:12]}", daemon=True).start()
        return True

    def _keep(self, key: str, value: str, stop: threading.Event) -> None:
        """Renew the lease every third of its length until released; say so if it was lost."""
        while not stop.wait(self.lease_ms / 3000):
            try:
                renewed = self._renew(keys=[_redis_key(key)], args=[value, self.lease_ms])
            except redis.RedisError as exc:
                log.warning("could not renew the lock on %s at %s: %s", key, self.url, exc)
                continue
            if not renewed:
                log.warning("the lock on %s lapsed while held: another process may run the same step", key)
                return

    def _deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (self.wait_seconds if timeout is None else timeout)

    def _give_up(self, key: str, timeout: float | None) -> None:
        info = self.holder_info(key) or {}
        who = ", ".join(f"{k} {info[k]}" for k in ("step", "host", "pid", "since") if info.get(k))
        waited = self.wait_seconds if timeout is None else timeout
        raise LockWaitTimeout(
            f"Waited {waited:g} s for the cache lock {key[:16]}… in Redis at {self.url}; it is held by "
            f"{who or 'another process'}."
        )

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: redis.RedisError) -> ConfigurationError:
        return ConfigurationError(
            f"Redis at {self.url} (BOARDFLOW_LOCKS) does not answer: {type(exc).__name__}: {exc}",
            hint="Start Redis there (e.g. `redis-server --port 6379`), or unset BOARDFLOW_LOCKS to use this "
            "machine's file locks. A re-run after it is back takes every finished step from the cache.",
        )


def _redis_key(key: str) -> str:
    return KEY_PREFIX + key


def _holder_of(value: str) -> str | None:
    try:
        info = json.loads(value)
    except ValueError:
        return value
    return info.get("holder") if isinstance(info, dict) else None


def _current_step() -> str | None:
    """The task run taking the lock, as the UI names it ("scene-1 · local/ken-burns")."""
    from prefect.context import TaskRunContext

    ctx = TaskRunContext.get()
    return ctx.task_run.name if ctx is not None else None
