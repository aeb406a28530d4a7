"""Content-addressed cache keys: generator id + version + canonical inputs with artifacts as sha256."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic_core
from prefect.cache_policies import CachePolicy
from prefect.locking.filesystem import FileSystemLockManager

from generators.base import BaseGenerator, GeneratorResult
from generators.settings import get_settings
from generators.storage import ArtifactStore


def canonical(value: Any) -> Any:
    """Inputs as plain JSON with every artifact replaced by `kind:sha256` (its URL does not matter)."""
    if isinstance(value, dict):
        if "sha256" in value and "kind" in value:
            return f"{value['kind']}:{value['sha256']}"
        return {k: canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def cache_key(generator: BaseGenerator, inputs_json: dict[str, Any]) -> str:
    """sha256(generator id, generator version, canonical inputs). `inputs_json` is the validated model dumped."""
    body = json.dumps(
        [generator.name, generator.version, canonical(inputs_json)], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record_key(store_url: str, key: str) -> str:
    """The key of Prefect's cache record (and lock) for the result of `key` kept in the store at `store_url`.

    A cached result names its artifacts by their URLs in one store. Pointing boardflow at another store
    (local → S3, another bucket) must not hand back the old store's URLs, so the record is per store; the
    result index and the provider journal live in the store itself and use `key` as it is.
    """
    return hashlib.sha256(f"{store_url}\n{key}".encode()).hexdigest()


@dataclass
class GeneratorCachePolicy(CachePolicy):
    """Prefect cache policy keyed by content and store; SERIALIZABLE isolation makes identical steps run once."""

    generator: BaseGenerator | None = None
    store_url: str = ""

    def compute_key(self, task_ctx, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs) -> str | None:
        assert self.generator is not None
        return record_key(self.store_url, cache_key(self.generator, inputs["inputs"]))


class _LockManager(FileSystemLockManager):
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


def lock_manager() -> FileSystemLockManager:
    return _LockManager(lock_files_directory=get_settings().data_dir / "locks")


def result_storage_path() -> Path:
    return get_settings().data_dir / "prefect-results"


class ResultIndex:
    """Our own record of each cached result, in the artifact store (so it is shared on S3).

    Prefect's cache record says *that* a step ran; this index lets a plan predict hits and lets a
    run notice a hit whose artifacts were deleted, before asking Prefect.
    """

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    async def get(self, key: str) -> GeneratorResult | None:
        data = await self.store.read_json(f"results/{key}.json")
        return GeneratorResult.model_validate(data) if data else None

    async def put(self, key: str, result: GeneratorResult) -> None:
        await self.store.write_json(f"results/{key}.json", result.model_dump(mode="json"))

    async def usable(self, key: str) -> GeneratorResult | None:
        """The indexed result when every artifact it names is still in the store, else None."""
        result = await self.get(key)
        if result is None:
            return None
        for artifact in result.artifacts():
            found = self.store.key_for(artifact.storage_url)
            if found is None or not await self.store.exists(found):
                return None
        return result
