"""Local-filesystem artifact store: the default, under the project's data folder."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import queue
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import StorageError
from .base import (
    CHUNK,
    ArtifactStore,
    Fingerprint,
    StoredObject,
    disk_full_error,
    is_disk_full,
    object_key,
    sha256_file,
)


class LocalStore(ArtifactStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root_url = self.root.as_uri()
        self._folders: dict[str, Path] = {}  # a key's folder ("results") → its resolved path

    def _path(self, key: str) -> Path:
        # Resolving every component costs one lstat each; a plan of a big batch looks up thousands of keys in
        # the same few folders. So a folder is resolved once, and then only the file's own name is checked.
        folder, _, name = key.rpartition("/")
        parent = self._folders.get(folder)
        if parent is None:
            parent = self._folders[folder] = self._inside(key, (self.root / folder).resolve())
        path = parent / name
        if name in ("", ".", "..") or path.is_symlink():
            return self._inside(key, path.resolve())
        return path

    def _inside(self, key: str, path: Path) -> Path:
        if not path.is_relative_to(self.root):
            raise StorageError(f"Key {key!r} points outside the store at {self.root}.")
        return path

    async def put_file(self, path: Path, ext: str) -> StoredObject:
        return await asyncio.to_thread(self._put_file, Path(path), ext)

    def _put_file(self, src: Path, ext: str) -> StoredObject:
        staging = self.root / "tmp"
        staging.mkdir(parents=True, exist_ok=True)
        # Copy into a private staging file, hash what landed there, then rename under the final key.
        fd, tmp_name = tempfile.mkstemp(dir=staging, prefix="put-")
        try:
            with src.open("rb") as fin, os.fdopen(fd, "wb") as fout:
                sha, size = _copy_and_hash(fin.fileno(), fout.fileno(), Path(tmp_name))
            key = object_key(sha, ext)
            final = self._path(key)
            # The staged bytes are known good; what sits under the key may have been damaged since it was
            # stored (same length, other bytes), and telling would mean hashing it. Replacing it costs a rename.
            # `created` stays "these bytes were not stored before" as far as a stat can tell (same length).
            kept = final.exists() and final.stat().st_size == size
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, final)
            return StoredObject(sha, key, self.url_for(key), size, created=not kept, fingerprint=_token(final))
        except BaseException as exc:
            Path(tmp_name).unlink(missing_ok=True)
            if is_disk_full(exc):
                raise disk_full_error(exc, self.root / "objects", src.stat().st_size) from exc
            raise

    async def get_to_path(self, key: str, dest: Path) -> None:
        src = self._path(key)
        if not src.exists():
            raise StorageError(f"Object {key} is missing from the store at {self.root}.")
        await asyncio.to_thread(_atomic_copy, src, Path(dest))

    async def exists(self, key: str) -> bool:
        return self._path(key).exists()

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    async def fingerprint(self, key: str) -> Fingerprint | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        return Fingerprint(st.st_size, _stat_token(st))

    async def hash_object(self, key: str) -> str:
        return (await asyncio.to_thread(sha256_file, self._path(key)))[0]

    async def read_json(self, key: str) -> dict | None:
        path = self._path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise StorageError(
                f"{path} is not valid JSON ({exc}).", hint="Delete it to let boardflow rewrite it."
            ) from exc

    async def write_json(self, key: str, data: dict) -> None:
        path = self._path(key)
        tmp = _write_aside(path, json.dumps(data, indent=1, sort_keys=True, default=str))
        try:
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    async def read_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    async def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = _write_aside(path, data)
        try:
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    async def create_json(self, key: str, data: dict) -> bool:
        path = self._path(key)
        # Write aside, then link into place: link() fails if the name exists, so exactly one writer wins
        # and no reader ever sees a half-written document.
        tmp = _write_aside(path, json.dumps(data, indent=1, sort_keys=True, default=str))
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink()

    async def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.exists():
            return []
        return sorted(
            str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")
        )

    def url_for(self, key: str) -> str:
        return self._path(key).as_uri()

    def key_for(self, url: str) -> str | None:
        parsed = urlparse(url)
        if parsed.scheme != "file" or parsed.netloc:  # file://host/… names another machine's file
            return None
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root):
            return None
        return str(path.relative_to(self.root))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


def _token(path: Path) -> str:
    return _stat_token(path.stat())


def _stat_token(st: os.stat_result) -> str:
    """Size, mtime (ns) and inode: any write in place moves the mtime, any re-store the inode.

    A change within one tick of the file system's clock that keeps the size would pass unseen here; the full
    sha256 check every input gets when a step reads it, and `--out` before it copies, still catch it.
    """
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def _write_aside(path: Path, body: str | bytes) -> Path:
    """`body` in a new hidden file beside `path`, complete on disk; on any failure nothing is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    data = body.encode("utf-8") if isinstance(body, str) else body
    try:
        with os.fdopen(fd, "wb") as fh:  # a full disk may only show when this flushes
            fh.write(data)
    except BaseException as exc:
        os.unlink(name)
        if is_disk_full(exc):
            raise disk_full_error(exc, path, len(data)) from exc
        raise
    return Path(name)


def _atomic_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)  # in-kernel (sendfile) on Linux
        os.replace(tmp, dest)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(exc):
            raise disk_full_error(exc, dest, src.stat().st_size) from exc
        raise


_COPY_STEP = 64 * CHUNK
# copy_file_range refuses some pairs of files (across filesystems on some kernels, special files):
# then plain read/write does the copy instead.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM}


def _copy(fin: int, fout: int, progress: queue.SimpleQueue) -> None:
    """Copy fin to fout, putting the running byte count on `progress`, then None (or the exception)."""
    try:
        copied = 0
        if hasattr(os, "copy_file_range"):
            try:
                while n := os.copy_file_range(fin, fout, _COPY_STEP):
                    copied += n
                    progress.put(copied)
            except OSError as exc:
                if copied or exc.errno not in _NO_KERNEL_COPY:
                    raise
        if not copied:
            while chunk := os.read(fin, CHUNK):
                view = memoryview(chunk)
                while view:  # os.write may take less than asked (signals, size limits)
                    view = view[os.write(fout, view) :]
                copied += len(chunk)
                progress.put(copied)
        progress.put(None)
    except BaseException as exc:
        progress.put(exc)


def _copy_and_hash(fin: int, fout: int, staged: Path) -> tuple[str, int]:
    """Copy fin into fout (the file at `staged`) and return the sha256 and size of the bytes staged.

    Hashing the staged bytes, not the source, makes the key describe exactly what is stored even if
    the source changes meanwhile. The kernel copies ahead in one thread while this one hashes what
    has landed: about the time of the hash alone (measured in bench/store_bench.py).
    """
    progress: queue.SimpleQueue = queue.SimpleQueue()
    copier = threading.Thread(target=_copy, args=(fin, fout, progress), name="store-copy", daemon=True)
    copier.start()
    digest = hashlib.sha256()
    buf = memoryview(bytearray(CHUNK))
    hashed = 0
    try:
        with staged.open("rb", buffering=0) as reader:
            while (copied := progress.get()) is not None:
                if isinstance(copied, BaseException):
                    raise copied
                while hashed < copied:
                    n = reader.readinto(buf[: min(CHUNK, copied - hashed)])
                    if not n:
                        raise StorageError(f"Staging file {staged} shrank while being written.")
                    digest.update(buf[:n])
                    hashed += n
    finally:
        copier.join()  # the copier uses fout: it must be done before the caller closes it
    return digest.hexdigest(), hashed
