"""The content-addressed artifact store interface shared by the local and S3 backends."""

from __future__ import annotations

import errno
import hashlib
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from ..errors import StorageError

CHUNK = 1024 * 1024
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class StoredObject:
    sha256: str
    key: str
    url: str
    size_bytes: int
    created: bool  # False when the same bytes were already stored
    fingerprint: str = ""  # the object as stored (see Fingerprint.token), recorded in its sidecar


@dataclass(frozen=True)
class Fingerprint:
    """What a store can say about an object without reading its bytes.

    `token` changes whenever the object is rewritten (size, mtime in ns and inode on disk; S3's checksum and
    ETag): a token equal to the one recorded when the object was stored vouches for its bytes. `sha256` is
    set where the store itself vouches for the full content's hash (S3's SHA-256 checksum of a single-part
    upload), so no record is needed at all.
    """

    size_bytes: int
    token: str
    sha256: str | None = None


def object_key(sha256: str, ext: str) -> str:
    """objects/ab/abcdef….ext — the fan-out keeps directories small."""
    return f"objects/{sha256[:2]}/{sha256}.{ext.lstrip('.').lower()}"


def sidecar_key(sha256: str) -> str:
    return f"objects/{sha256[:2]}/{sha256}.json"


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def is_disk_full(exc: BaseException) -> TypeGuard[OSError]:
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def disk_full_error(exc: OSError, path: Path, needed: int) -> StorageError:
    """A full disk (or quota) while writing `path`: which disk, how much the write needed, what to do."""
    where = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(where).free
    what = "quota" if exc.errno == errno.EDQUOT else "space"
    return StorageError(
        f"No {what} left on the disk holding {path}: the write needs {_size(needed)} and "
        f"{_size(free)} is free there. Nothing was kept.",
        hint=f"Free at least {_size(max(needed - free, 1))} on that disk, or point BOARDFLOW_STORE "
        "(or BOARDFLOW_DATA_DIR, TMPDIR) at one with room, then run again: finished steps come from the cache.",
    )


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


class ArtifactStore(ABC):
    """Stores bytes once per content hash, plus small JSON documents (sidecars, results, journal).

    All methods are async; backends push blocking I/O to threads. Writes are atomic: a reader
    never sees a partly written object under its final key.
    """

    root_url: str

    @abstractmethod
    async def put_file(self, path: Path, ext: str) -> StoredObject:
        """Store the file's bytes under their sha256 (streamed, never loaded whole)."""

    @abstractmethod
    async def get_to_path(self, key: str, dest: Path) -> None:
        """Stream the object at `key` into `dest` (atomically: dest appears only when complete)."""

    @abstractmethod
    async def exists(self, key: str) -> bool: ...

    @abstractmethod
    async def delete(self, key: str) -> None: ...

    @abstractmethod
    async def fingerprint(self, key: str) -> Fingerprint | None:
        """The object's Fingerprint from one stat (HEAD on S3), or None when there is no object at `key`."""

    @abstractmethod
    async def hash_object(self, key: str) -> str:
        """The sha256 of the bytes stored at `key`, read in full (streamed): the check of last resort."""

    @abstractmethod
    async def read_json(self, key: str) -> dict | None:
        """The JSON document at `key`, or None when there is none."""

    @abstractmethod
    async def write_json(self, key: str, data: dict) -> None: ...

    @abstractmethod
    async def read_bytes(self, key: str) -> bytes | None:
        """The whole small document at `key` (e.g. a Prefect result record) as bytes, or None when there is none."""

    @abstractmethod
    async def write_bytes(self, key: str, data: bytes) -> None:
        """Write a small document at `key` atomically, replacing any there."""

    @abstractmethod
    async def create_json(self, key: str, data: dict) -> bool:
        """Write only if `key` does not exist yet; True when this call created it."""

    @abstractmethod
    async def list_keys(self, prefix: str) -> list[str]: ...

    @abstractmethod
    def url_for(self, key: str) -> str:
        """The canonical URL recorded in artifacts (file://… or s3://…)."""

    @abstractmethod
    def key_for(self, url: str) -> str | None:
        """The key of a URL this store owns, or None when the URL is not in this store."""

    def local_path(self, key: str) -> Path | None:
        """A path readable in place, for backends that have one (the local filesystem)."""
        return None

    def browser_url(
        self,
        key: str,
        expires_seconds: int = 7 * 24 * 3600,
        *,
        head: bool = False,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str:
        """A URL a person can open: presigned for S3, file:// locally.

        For S3, `head` signs a HEAD instead of a GET (a signature names its method), and `content_type` /
        `content_disposition` replace those headers in S3's answer; a file:// URL has no headers to set.
        """
        return self.url_for(key)

    async def put_bytes(self, data: bytes, ext: str) -> StoredObject:
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=f".{ext}") as tmp:
            tmp.write(data)
            tmp.flush()
            return await self.put_file(Path(tmp.name), ext)
