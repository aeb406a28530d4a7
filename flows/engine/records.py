"""Prefect's result records (task results with their cache records, a pipeline run's return value) in the store.

With an S3 store, Prefect keeps its records beside the artifacts, under `<store>/prefect-results/`, so a step
cached on one machine is a cache hit on every other and a run's return value can be read anywhere. With a
local store they stay in this machine's data folder, as they always have (`caching.result_storage_path`).

How Prefect 3.9.1 uses a result storage (prefect/results.py, prefect/transactions.py, read 2026-12-04):

- A task with a cache policy and no `key_storage` writes one file per cache key into its result storage:
  the record's metadata and the serialized result together. That file *is* the cache record: a later
  transaction with the same key asks `read_path(key)` and gets a hit when it reads back. So moving the
  result storage moves the cache records; no separate metadata storage is needed.
- Locks are not kept in the storage: the cache policy's lock manager (flows/engine/locks.py) guards the
  same key, and the store checks it before it writes (`_apersist_result_record`).
- Task and Flow constructors refuse a block that is not saved on the server ("Result storage configuration
  must be persisted server-side"), because a record names its storage by block-document id so that any
  process can find it. These records are not saved: every process makes the storage for the store it
  writes to (no API calls on the hot path, nothing to keep in sync on the server), so the record's
  metadata carries no block id; its storage key is the record's URL in the store instead. Prefect's own
  `State.result()` would look for that key in a local folder; `read_run_result` reads it from the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from prefect.client.schemas.objects import State
from prefect.filesystems import WritableFileSystem
from prefect.results import ResultStore
from pydantic import Field, PrivateAttr

from generators.errors import StorageError
from generators.settings import get_settings
from generators.storage import ArtifactStore, open_store

RECORDS = "prefect-results"  # the store's folder (prefix) of Prefect's result records

T = TypeVar("T")


class StoreRecords(WritableFileSystem):
    """Prefect's result storage over boardflow's artifact store: each record is `<store>/prefect-results/<key>`.

    Async only, like boardflow's tasks and flows that use it (Prefect awaits `read_path`/`write_path`).
    """

    _block_type_name = "boardflow Store Records"
    _block_type_slug = "boardflow-store-records"

    store_url: str = Field(description="The artifact store (s3://bucket/prefix or file://…) the records live in.")
    _store: ArtifactStore | None = PrivateAttr(None)

    @classmethod
    def of(cls, store: ArtifactStore) -> StoreRecords:
        """Records in this open store (its credentials and client, e.g. a store block's)."""
        records = cls(store_url=store.root_url)
        records._store = store
        return records

    @property
    def store(self) -> ArtifactStore:
        if self._store is None:  # opened on first use: a flow's storage is made when its module is imported
            self._store = open_store(self.store_url)
        return self._store

    @property
    def prefix(self) -> str:
        """The URL every record's key starts with: `<store>/prefect-results/`."""
        return f"{self.store_url.rstrip('/')}/{RECORDS}/"

    def _resolve_path(self, path: str) -> str:
        """Prefect's hook for a storage's own key layout: a record's storage key becomes its full URL, so the
        metadata a run's state carries says which store holds its value (`read_run_result`).

        Prefect relates it back to the bare cache key (the lock's name) by cutting this prefix off, as a path
        (ResultStore._apersist_result_record, Prefect 3.9.1).
        """
        return self.prefix + path

    def _key(self, path: str) -> str:
        """The store key of a record named by its bare key or its full URL."""
        if "://" not in path:
            return f"{RECORDS}/{path}"
        if not path.startswith(self.prefix):
            raise StorageError(
                f"The Prefect result record {path} is not in the store at {self.store_url}.",
                hint="Read it with the store it names (BOARDFLOW_STORE of the machine that wrote it).",
            )
        return f"{RECORDS}/{path.removeprefix(self.prefix)}"

    async def read_path(self, path: str) -> bytes:
        data = await self.store.read_bytes(self._key(path))
        if data is None:
            raise StorageError(
                f"No Prefect result record {self.store.url_for(self._key(path))}.",
                hint="It was deleted, or written to another store: check BOARDFLOW_STORE.",
            )
        return data

    async def write_path(self, path: str, content: bytes) -> None:
        await self.store.write_bytes(self._key(path), content)


def result_storage(store: ArtifactStore) -> Path | StoreRecords:
    """Where Prefect keeps the results and cache records of steps made into `store`.

    An S3 store (no local path) holds them itself, shared by every machine; a local store leaves them in this
    machine's data folder, as before.
    """
    if store.local_path(RECORDS) is not None:
        from .caching import result_storage_path

        return result_storage_path()
    return StoreRecords.of(store)


def default_result_storage() -> Path | StoreRecords:
    """`result_storage` of BOARDFLOW_STORE, without opening it (a flow's storage is chosen on import)."""
    url = get_settings().store_url
    if urlparse(url).scheme == "s3":
        return StoreRecords(store_url=url)
    from .caching import result_storage_path

    return result_storage_path()


def with_result_storage(runnable: T, storage: Path | StoreRecords) -> T:
    """A task or flow whose results go to `storage`.

    Set on the made task or flow: their constructors refuse a block not saved on the server (see the module
    docstring), while the engine takes whichever block the attribute holds (prefect.results.aresolve_result_storage).
    """
    runnable.result_storage = storage  # type: ignore[attr-defined]
    return runnable


async def read_run_result(state: State) -> Any:
    """The value a finished run returned (its `state` as read from the API); a failed run's exception is raised.

    A value in a store (its storage key is the record's URL there) is read from that store, with this machine's
    S3 endpoint and credentials; any other (a local path, a saved block) is read the way Prefect does.
    """
    data = state.data
    key = getattr(data, "storage_key", None)
    if not (isinstance(key, str) and f"/{RECORDS}/" in key and "://" in key):
        return await state.aresult()
    records = StoreRecords(store_url=key.rpartition(f"/{RECORDS}/")[0])
    record = await ResultStore(result_storage=records, serializer=data.serializer).aread(key)  # type: ignore[union-attr]
    if state.is_completed():
        return record.result
    if isinstance(record.result, BaseException):
        raise record.result
    raise RuntimeError(f"The run ended {state.name}: {state.message}")
