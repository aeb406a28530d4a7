"""Local-filesystem artifact store: the default, under the project's data folder."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import StorageError
from .base import CHUNK, ArtifactStore, StoredObject, object_key


class LocalStore(ArtifactStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root_url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise StorageError(f"Key {key!r} points outside the store at {self.root}.")
        return path

    async def put_file(self, path: Path, ext: str) -> StoredObject:
        return await asyncio.to_thread(self._put_file, Path(path), ext)

    def _put_file(self, src: Path, ext: str) -> StoredObject:
        staging = self.root / "tmp"
        staging.mkdir(parents=True, exist_ok=True)
        # One pass: copy into a staging file while hashing, then rename under the final key.
        fd, tmp_name = tempfile.mkstemp(dir=staging, prefix="put-")
        digest = hashlib.sha256()
        size = 0
        try:
            with src.open("rb") as fin, os.fdopen(fd, "wb") as fout:
                while chunk := fin.read(CHUNK):
                    digest.update(chunk)
                    fout.write(chunk)
                    size += len(chunk)
            sha = digest.hexdigest()
            key = object_key(sha, ext)
            final = self._path(key)
            if final.exists():
                os.unlink(tmp_name)
                return StoredObject(sha, key, self.url_for(key), size, created=False)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, final)
            return StoredObject(sha, key, self.url_for(key), size, created=True)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
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

    async def read_json(self, key: str) -> dict | None:
        path = self._path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise StorageError(f"{path} is not valid JSON ({exc}).", hint="Delete it to let boardflow rewrite it.") from exc

    async def write_json(self, key: str, data: dict) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True, default=str)
        os.replace(tmp, path)

    async def create_json(self, key: str, data: dict) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps(data, indent=1, sort_keys=True, default=str)
        # Write aside, then link into place: link() fails if the name exists, so exactly one writer wins
        # and no reader ever sees a half-written document.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    async def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file()
                      and not p.name.startswith(".tmp-"))

    def url_for(self, key: str) -> str:
        return self._path(key).as_uri()

    def key_for(self, url: str) -> str | None:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            return None
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root):
            return None
        return str(path.relative_to(self.root))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


def _atomic_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    try:
        with src.open("rb") as fin, os.fdopen(fd, "wb") as fout:
            while chunk := fin.read(CHUNK):
                fout.write(chunk)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
