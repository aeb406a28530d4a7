"""Lineage: walk sidecar parents in the artifact store back to the first inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from generators.errors import InputError
from generators.storage import ArtifactStore, open_store, sha256_file, sidecar_key


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
    repeated: bool = False  # already shown higher up the tree: its parents are not listed again
    parents: list[LineageNode] = field(default_factory=list)


async def lineage(sha: str, store: ArtifactStore | None = None) -> LineageNode:
    """The tree of generators and inputs behind the artifact `sha`, read from the store's sidecars."""
    store = store or open_store()
    seen: set[str] = set()

    async def node(s: str) -> LineageNode:
        meta = await store.read_json(sidecar_key(s))
        if meta is None:
            return LineageNode(s, missing=True)
        first = (meta.get("made_by") or [{}])[0]
        found = LineageNode(
            s,
            kind=meta.get("type"),
            format=meta.get("format"),
            facts={k: meta[k] for k in ("width", "height", "duration") if meta.get(k) is not None},
            generator=first.get("generator"),
            step=first.get("step"),
            repeated=s in seen,
        )
        if not found.repeated:
            seen.add(s)
            for parent in first.get("parents") or meta.get("parents") or []:
                found.parents.append(await node(parent))
        return found

    return await node(sha)
