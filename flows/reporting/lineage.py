"""Lineage: walk sidecar parents in the artifact store back to the first inputs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, ValidationError

from generators.errors import BoardflowError, InputError
from generators.storage import ArtifactStore, open_store, sha256_file, sidecar_key

_SHA = re.compile(r"[0-9a-f]{64}")


async def find_sha(ref: str, store: ArtifactStore | None = None) -> str:
    """A full sha256 from a prefix, a store URL, or a file path inside the store."""
    store = store or open_store()
    if Path(ref).is_file():  # any copy of an output: content addressing finds it by its bytes
        return sha256_file(Path(ref))[0]
    candidate = ref
    if "://" in ref or "/" in ref:
        candidate = Path(urlparse(ref).path if "://" in ref else ref).stem
    candidate = candidate.lower()
    if len(candidate) == 64:
        return candidate
    if len(candidate) < 4 or any(c not in "0123456789abcdef" for c in candidate):
        raise InputError(f"{ref!r} is not a sha256, a prefix of one (4+ hex digits), or a store path.")
    keys = await store.list_keys(f"objects/{candidate[:2]}")
    matches = sorted({Path(k).stem for k in keys if Path(k).stem.startswith(candidate) and k.endswith(".json")})
    if not matches:
        raise InputError(f"No artifact in the store starts with {candidate}.", hint=f"The store is {store.root_url}.")
    if len(matches) > 1:
        raise InputError(f"{candidate} matches {len(matches)} artifacts; give more digits.")
    return matches[0]


MAX_DEPTH = 24  # generations shown; a longer chain (or a tampered one) is cut with a note
MAX_NODES = 2_000


class _MadeBy(BaseModel):
    model_config = ConfigDict(extra="ignore")
    generator: str | None = None
    step: str | None = None
    parents: list[str] = []


class _Sidecar(BaseModel):
    """What lineage reads of a sidecar; anything else in it is ignored, anything malformed refused."""

    model_config = ConfigDict(extra="ignore")
    type: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    parents: list[str] = []
    made_by: list[_MadeBy] = []


@dataclass
class LineageNode:
    """One artifact in a lineage tree, as its sidecar describes it, and the artifacts it was made from."""

    sha256: str
    kind: str | None = None
    format: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # width, height, duration where known
    generator: str | None = None  # None: imported, not made by a generator
    step: str | None = None
    missing: bool = False  # no sidecar in this store
    unreadable: str | None = None  # the sidecar is there but not one boardflow wrote (tampered, truncated)
    repeated: bool = False  # already shown higher up the tree: its parents are not listed again
    cut: bool = False  # deeper than MAX_DEPTH (or past MAX_NODES): its parents are not read
    parents: list[LineageNode] = field(default_factory=list)


async def lineage(sha: str, store: ArtifactStore | None = None) -> LineageNode:
    """The tree of generators and inputs behind the artifact `sha`, read from the store's sidecars.

    Sidecars are data from disk or a bucket, so each is validated; a chain deeper than MAX_DEPTH is cut.
    """
    store = store or open_store()
    seen: set[str] = set()

    async def node(s: str, depth: int) -> LineageNode:
        if not _SHA.fullmatch(s):
            return LineageNode(s[:64], unreadable="not a sha256")
        if depth > MAX_DEPTH or len(seen) >= MAX_NODES:
            return LineageNode(s, cut=True)
        try:
            raw = await store.read_json(sidecar_key(s))
        except (BoardflowError, ValueError) as exc:
            return LineageNode(s, unreadable=str(exc)[:120])
        if raw is None:
            return LineageNode(s, missing=True)
        try:
            meta = _Sidecar.model_validate(raw)
        except ValidationError as exc:
            return LineageNode(s, unreadable=f"{exc.error_count()} malformed field(s)")
        first = meta.made_by[0] if meta.made_by else _MadeBy()
        found = LineageNode(
            s,
            kind=meta.type,
            format=meta.format,
            facts={k: v for k in ("width", "height", "duration") if (v := getattr(meta, k)) is not None},
            generator=first.generator,
            step=first.step,
            repeated=s in seen,
        )
        if not found.repeated:
            seen.add(s)
            for parent in first.parents or meta.parents:
                found.parents.append(await node(parent, depth + 1))
        return found

    return await node(sha, 0)
