"""GeneratorContext: what a running generator may do — resolve inputs, store outputs, report progress."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar
from urllib.parse import ParseResult, unquote, urlparse

from .artifacts import ARTIFACT_CLASSES, Artifact, AudioArtifact, ImageArtifact, TextArtifact, VideoArtifact
from .errors import ArtifactDecodeError, DamagedArtifactError, StorageError, UnsafeURLError, shorten
from .fetch import FetchPolicy, download
from .integrity import CHANGED, MISSING
from .media import probe
from .scratch import new_scratch_dir
from .sidecars import MadeBy, write_sidecar
from .storage import ArtifactStore, open_store, sha256_file

log = logging.getLogger("boardflow")
A = TypeVar("A", bound=Artifact)
ProgressFn = Callable[[float, str], None]
# What store_*_result take: the bytes, a pathlib.Path the generator wrote, or a URL string (http(s), or one
# of this store's own URLs). A string is never read as a local path: it may come from a spec or a provider.
Source = Path | str | bytes

_EXT = {"jpeg": "jpg", "safetensors": "safetensors"}


class GeneratorContext:
    """One generator run's view of the world. Use as `async with GeneratorContext(...) as ctx:`.

    Temporary files live in one folder that is removed when the context closes, on error too.
    """

    def __init__(
        self,
        store: ArtifactStore | None = None,
        *,
        run_id: str | None = None,
        step: str | None = None,
        cache_key: str | None = None,
        progress: ProgressFn | None = None,
        fetch_policy: FetchPolicy | None = None,
    ) -> None:
        self.store = store or open_store()
        self.run_id = run_id
        self.step = step
        self.cache_key = cache_key
        self.fetch_policy = fetch_policy or FetchPolicy.from_settings()
        self._progress = progress
        self.generator: str | None = None
        self.input_artifacts: list[Artifact] = []
        self.external_job_ids: list[str] = []
        self.actual_cost_usd: Decimal | None = None
        self.possible_duplicate_charges = 0  # resubmissions of a paid job whose first answer was lost
        self.compute_seconds: float | None = None
        self.last_progress: tuple[float, str] = (0.0, "")
        self._tmpdir: Path | None = None
        self._resolved: dict[str, Path] = {}
        self._counter = 0

    async def __aenter__(self) -> GeneratorContext:
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        self._resolved.clear()

    def bind(self, *, generator: str, input_artifacts: list[Artifact]) -> None:
        self.generator = generator
        self.input_artifacts = input_artifacts

    # -- scratch space -------------------------------------------------------------------------
    def temp_path(self, suffix: str = "") -> Path:
        """A fresh path inside this context's scratch folder (removed on close)."""
        if self._tmpdir is None:
            self._tmpdir = new_scratch_dir()  # named with our pid: a SIGKILLed run's is swept on the next start
        self._counter += 1
        return self._tmpdir / f"{self._counter:04d}{suffix}"

    # -- progress, jobs, cost ------------------------------------------------------------------
    def publish_progress(self, fraction: float, message: str = "") -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        self.last_progress = (fraction, message)
        if self._progress:
            self._progress(fraction, message)

    async def set_external_job_id(self, job_id: str, **details: str) -> None:
        """Record a provider job id *before* waiting on it, so a retry or re-run rejoins the job."""
        self.external_job_ids.append(job_id)
        if self.cache_key:
            entry = {
                "job_id": job_id,
                "generator": self.generator,
                "run_id": self.run_id,
                "submitted_at": _now(),
                **details,
            }
            await self._journal(entry)

    async def journal_intent(self, **details: str) -> None:
        """Record, *before* submitting a paid job, that this step is about to: if the answer is lost (a dropped
        connection after the provider took the job), the next attempt knows a job may exist and looks for it."""
        if self.cache_key:
            entry = {"job_id": None, "generator": self.generator, "run_id": self.run_id, "intent_at": _now(), **details}
            await self._journal(entry)

    async def _journal(self, entry: dict) -> None:
        # The count of possible duplicates travels with the step's journal: the attempt that resubmitted may fail
        # later (a 429 on the result) and the one that finishes, rejoining the job, must still report it.
        if self.possible_duplicate_charges:
            entry["possible_duplicates"] = self.possible_duplicate_charges
        await self.store.write_json(f"journal/{self.cache_key}.json", entry)

    def count_possible_duplicate(self) -> None:
        """A paid job is submitted again though an earlier submission of it may have been billed (its answer was
        lost and the provider offers no way to find it): the cost tally and the run summary say so."""
        self.possible_duplicate_charges += 1

    async def previous_job(self) -> dict | None:
        """The job an earlier attempt of this same step submitted, if any."""
        if not self.cache_key:
            return None
        entry = await self.store.read_json(f"journal/{self.cache_key}.json")
        if entry is not None:
            self.possible_duplicate_charges = max(
                self.possible_duplicate_charges, int(entry.get("possible_duplicates", 0))
            )
        return entry

    async def clear_job(self) -> None:
        if self.cache_key:
            await self.store.delete(f"journal/{self.cache_key}.json")

    def record_cost(self, usd: Decimal) -> None:
        """The actual cost the provider reported for this run."""
        self.actual_cost_usd = (self.actual_cost_usd or Decimal(0)) + Decimal(usd)

    def record_compute_seconds(self, seconds: float) -> None:
        self.compute_seconds = (self.compute_seconds or 0.0) + seconds

    # -- resolving inputs ----------------------------------------------------------------------
    async def resolve_artifact(self, artifact: Artifact) -> Path:
        """A local path holding the artifact's bytes (streamed in if remote, checked against sha256)."""
        if artifact.sha256 in self._resolved:
            return self._resolved[artifact.sha256]
        path = await self._resolve(artifact)
        self._resolved[artifact.sha256] = path
        return path

    async def _resolve(self, artifact: Artifact) -> Path:
        """Every scheme ends in a check of size and sha256: a store file, an S3 object or a download."""
        url = artifact.storage_url
        parsed = _parse(url)
        key = self.store.key_for(url)
        if key is not None:  # an object of the store: gone or changed, the step that made it can make it again
            local = self.store.local_path(key)
            if local is None:
                dest = self.temp_path(Path(key).suffix)
                try:
                    await self.store.get_to_path(key, dest)
                except StorageError:
                    if await self.store.fingerprint(key) is None:
                        raise _missing(artifact, url) from None
                    raise
                return await _verified(dest, artifact, url, scratch=True, stored=True)
            if not local.exists():
                raise _missing(artifact, url)
            return await _verified(local, artifact, url, stored=True)
        if parsed.scheme == "s3":
            return await self._resolve_s3(artifact, parsed.netloc, parsed.path.lstrip("/"))
        if parsed.scheme in ("http", "https"):
            dest = self.temp_path(Path(parsed.path).suffix)
            await download(url, dest, self.fetch_policy)
            return await _verified(dest, artifact, url, scratch=True)
        if parsed.scheme == "file":
            return await _verified(self._allowed_file(url), artifact, url)
        raise UnsafeURLError(
            f"Refusing {shorten(url)}: unsupported URL scheme {parsed.scheme!r}.",
            hint="Artifacts live in the store, on S3, or at an http(s) URL.",
        )

    async def _resolve_s3(self, artifact: Artifact, bucket: str, key: str) -> Path:
        url = artifact.storage_url
        if not self.fetch_policy.admits_s3(bucket, key):
            # Not tried with whatever AWS credentials are about: they may read far more than the store.
            raise UnsafeURLError(
                f"Refusing {shorten(url)}: S3 inputs are read only from the artifact store ({self.store.root_url}).",
                hint=f"Copy it into the store, or add {bucket!r} (or 'bucket/prefix') to BOARDFLOW_ALLOWED_S3.",
            )
        dest = self.temp_path(Path(key).suffix)
        await open_store(f"s3://{bucket}").get_to_path(key, dest)
        return await _verified(dest, artifact, url, scratch=True)

    def _allowed_file(self, url: str) -> Path:
        """The path of a file:// URL outside the store that an allow-listed folder admits."""
        parsed = urlparse(url)
        if parsed.netloc:
            raise UnsafeURLError(
                f"Refusing {shorten(url)}: a file URL with a host part ({parsed.netloc!r}) names another machine.",
                hint="Use file:///path (three slashes) for a file on this machine.",
            )
        path = Path(unquote(parsed.path)).resolve()
        if not self.fetch_policy.admits_folder(path):
            raise UnsafeURLError(
                f"Refusing {shorten(url)}: file URLs are resolved only inside the artifact store "
                f"({self.store.root_url}) or a folder listed in BOARDFLOW_ALLOWED_FOLDERS.",
                hint="Import the file first with `boardflow import`, or allow its folder in BOARDFLOW_ALLOWED_FOLDERS.",
            )
        return path

    # -- storing outputs -----------------------------------------------------------------------
    async def store_image_result(
        self, source: Source, *, format: str | None = None, parents: list[str] | None = None
    ) -> ImageArtifact:
        return await self._store(ImageArtifact, source, format, parents)

    async def store_video_result(
        self, source: Source, *, format: str | None = None, parents: list[str] | None = None
    ) -> VideoArtifact:
        return await self._store(VideoArtifact, source, format, parents)

    async def store_audio_result(
        self, source: Source, *, format: str | None = None, parents: list[str] | None = None
    ) -> AudioArtifact:
        return await self._store(AudioArtifact, source, format, parents)

    async def store_text_result(self, content: str, *, parents: list[str] | None = None) -> TextArtifact:
        return await self._store(TextArtifact, content.encode("utf-8"), "txt", parents, content=content)

    async def store_artifact(self, kind: str, source: Source, **kw) -> Artifact:
        """Store by kind name ("image", "video"…), for code that handles any kind."""
        if kind == "text":  # a text artifact carries its content, so read it from the source
            path = await self._materialize(source)
            probe(path, "text")  # refuses bytes that are not UTF-8 with an ArtifactDecodeError
            return await self.store_text_result(path.read_text(encoding="utf-8"), parents=kw.get("parents"))
        return await self._store(ARTIFACT_CLASSES[kind], source, kw.get("format"), kw.get("parents"))

    async def _store(self, cls: type[A], source: Source, declared: str | None, parents: list[str] | None, **extra) -> A:
        path = await self._materialize(source)
        info = probe(path, cls.artifact_type)
        if declared and _norm(declared) != _norm(info.format):
            raise ArtifactDecodeError(
                f"Declared format {declared!r} but the bytes are {info.format!r}.",
                hint="Drop the format argument or fix the file.",
            )
        stored = await self.store.put_file(path, _EXT.get(info.format, info.format))
        parent_ids = tuple(parents if parents is not None else dict.fromkeys(a.sha256 for a in self.input_artifacts))
        artifact = cls(
            sha256=stored.sha256,
            storage_url=stored.url,
            size_bytes=stored.size_bytes,
            parents=parent_ids,
            generator=self.generator,
            **info.artifact_fields(),
            **extra,
        )
        try:
            await self._write_sidecar(artifact, stored.key, stored.fingerprint)
        except BaseException:
            if stored.created:  # an object without its sidecar is invisible to lineage: keep neither
                await self.store.delete(stored.key)
            raise
        return artifact

    async def _materialize(self, source: Source) -> Path:
        if isinstance(source, bytes):
            path = self.temp_path()
            path.write_bytes(source)
            return path
        if isinstance(source, Path):
            return source
        parsed = _parse(source)
        if parsed.scheme in ("http", "https"):
            dest = self.temp_path(Path(parsed.path).suffix)
            await download(source, dest, self.fetch_policy)
            return dest
        if not parsed.scheme:
            # The contract says URL: a string may come from outside (a spec, a provider), so it is never a path.
            raise UnsafeURLError(
                f"Cannot store from {shorten(source)}: a string is taken as a URL, and this one has no scheme.",
                hint="Pass a pathlib.Path for a file your generator wrote, the bytes, or an http(s) URL.",
            )
        key = self.store.key_for(source)
        if key is None:
            # A URL string may come from outside (a provider's answer), so it must not read local files.
            where = "file URLs are read only inside the store" if parsed.scheme == "file" else "unsupported URL"
            raise UnsafeURLError(
                f"Cannot store from {shorten(source)}: {where} ({self.store.root_url}).",
                hint="Pass a pathlib.Path for a file your generator wrote, or an http(s) URL.",
            )
        if (local := self.store.local_path(key)) is not None:
            return local
        dest = self.temp_path(Path(key).suffix)
        await self.store.get_to_path(key, dest)
        return dest

    async def _write_sidecar(self, artifact: Artifact, key: str, stored: str) -> None:
        made_by = MadeBy(generator=self.generator, input_digest=self.cache_key, step=self.step)
        await write_sidecar(self.store, artifact, key, made_by, self.run_id, stored)


def _parse(url: str) -> ParseResult:
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 — raises on a port that is not a number
    except ValueError as exc:
        raise UnsafeURLError(f"Refusing {shorten(url)}: it is not a valid URL ({exc}).") from None
    return parsed


def _missing(artifact: Artifact, url: str) -> DamagedArtifactError:
    return DamagedArtifactError(
        f"Artifact {artifact.short} is missing from the store ({shorten(url)}).",
        sha256=artifact.sha256,
        problem=MISSING,
        hint="Run again: the step that made it is made again (or use --refresh).",
    )


async def _verified(path: Path, artifact: Artifact, url: str, *, scratch: bool = False, stored: bool = False) -> Path:
    """`path` once its size and sha256 are the artifact's; a scratch copy that is not is removed.

    `stored`: the bytes came from this store's object, so a mismatch is a DamagedArtifactError (the step
    that made the object can make it again); from anywhere else it is a plain StorageError.
    """
    if not path.is_file():
        raise StorageError(
            f"{shorten(url)} holds no file, so not artifact {artifact.short}.",
            hint="Re-run the step that made it (use --refresh), or fix the URL.",
        )
    size = path.stat().st_size
    sha = (await asyncio.to_thread(sha256_file, path))[0] if size == artifact.size_bytes else None
    if sha == artifact.sha256:
        return path
    if scratch:
        path.unlink(missing_ok=True)  # wrong bytes must not stay where a later step could pick them up
    found = f"its bytes hash to {sha[:12]}" if sha else f"it holds {size} bytes, not {artifact.size_bytes}"
    message = f"{shorten(url)} does not hold artifact {artifact.short}: {found}."
    if stored:
        raise DamagedArtifactError(
            message,
            sha256=artifact.sha256,
            problem=CHANGED,
            hint="It changed after it was made; run again: the step that made it is made again (or use --refresh).",
        )
    raise StorageError(
        message, hint="The file changed after it was made; re-run the step that made it (use --refresh)."
    )


def _norm(fmt: str) -> str:
    fmt = fmt.lower().lstrip(".")
    return {"jpg": "jpeg", "tif": "tiff", "m4a": "mp4", "mov": "mp4", "oga": "ogg", "opus": "ogg"}.get(fmt, fmt)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
