"""Cache locks: Prefect's file lock manager made atomic, async-safe, and able to break a dead holder's lock."""

from __future__ import annotations

import functools
import os
import socket
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic_core
from prefect.locking.filesystem import FileSystemLockManager
from prefect.locking.protocol import LockManager

from generators.errors import ConfigurationError
from generators.settings import get_settings


class FileLockManager(FileSystemLockManager):
    """Prefect's file lock manager with atomic, non-blocking acquisition.

    Prefect 3.9.1's version touches the lock file and fills it afterwards (a concurrent reader in
    between fails with "EOF while parsing"), and on contention its async path falls back to the
    *sync* acquire, whose time.sleep polling blocks the event loop — identical steps in one async
    flow then deadlock. Here a lock file appears complete or not at all (written aside, then
    hard-linked into place), and waiting is always async in async code.

    Its locks never expire, so one left by a killed process (SIGKILL, OOM, power cut) would block that
    step forever: each lock names its host and pid, and a lock whose process is gone from this host is
    broken. (Holders on other hosts cannot be checked; their locks wait for release.)
    """

    def _try_create(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        self._ensure_lock_files_directory_exists()
        lock_path = self._lock_path_for_key(key)
        expiration = datetime.now(UTC) + timedelta(seconds=hold_timeout) if hold_timeout is not None else None
        fd, tmp = tempfile.mkstemp(dir=self.lock_files_directory, prefix=".lock-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(
                pydantic_core.to_json(
                    {
                        "holder": holder,
                        "expiration": str(expiration) if expiration else None,
                        "host": socket.gethostname(),
                        "pid": os.getpid(),
                    }
                )
            )
        try:
            os.link(tmp, lock_path)
        except FileExistsError:
            return self.is_lock_holder(key, holder)
        finally:
            os.unlink(tmp)
        self._locks[key] = {"holder": holder, "expiration": expiration, "path": lock_path}
        return True

    def acquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        while not self._try_create(key, holder, hold_timeout):
            if not self.wait_for_lock(key, acquire_timeout):
                return False
        return True

    async def aacquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        while not self._try_create(key, holder, hold_timeout):
            if not await self.await_for_lock(key, acquire_timeout):
                return False
        return True

    def is_locked(self, key: str, use_cache: bool = False) -> bool:
        info = self._get_lock_info(key, use_cache=use_cache)
        if info is not None and _holder_died(info):
            Path(info["path"]).unlink(missing_ok=True)
            self._locks.pop(key, None)
            return False
        return super().is_locked(key, use_cache=use_cache)


def _holder_died(info: dict[str, Any]) -> bool:
    """True when the lock was taken by a process on this host that no longer exists."""
    pid = info.get("pid")
    if info.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return False


def lock_manager() -> LockManager:
    """This machine's file locks, or leases in Redis shared by every machine when BOARDFLOW_LOCKS names one.

    BOARDFLOW_LOCK_LEASE_SECONDS (default 30) is how soon a dead holder's lock lapses; BOARDFLOW_LOCK_WAIT_SECONDS
    (default 6 h) is how long a step waits for another process making the same result before it fails.
    """
    url = os.environ.get("BOARDFLOW_LOCKS", "").strip()
    if not url or url == "file":
        return FileLockManager(lock_files_directory=get_settings().data_dir / "locks")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            f"BOARDFLOW_LOCKS={url!r} is not a Redis URL.",
            hint="Use redis://HOST:6379/0 (or rediss:// for TLS), or unset it for this machine's file locks.",
        )
    return _redis_locks(
        url, _seconds("BOARDFLOW_LOCK_LEASE_SECONDS", 30.0), _seconds("BOARDFLOW_LOCK_WAIT_SECONDS", 21600.0)
    )


@functools.cache
def _redis_locks(url: str, lease: float, wait: float) -> LockManager:
    """One manager (one connection pool, one set of leases) per URL and settings in a process."""
    from .redis_locks import RedisLeaseLockManager

    return RedisLeaseLockManager(url, lease_seconds=lease, wait_seconds=wait)


def check_locks() -> None:
    """Raise a ConfigurationError naming the URL when BOARDFLOW_LOCKS names a Redis that does not answer."""
    manager = lock_manager()
    check = getattr(manager, "check", None)
    if check is not None:
        check()


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not (0 < value < float("inf")):
        raise ConfigurationError(
            f"{name}={raw!r} is not a positive number of seconds.", hint=f"e.g. {name}={default:g}"
        )
    return value
