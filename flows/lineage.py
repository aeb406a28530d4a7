"""Lineage: walk sidecar parents in the artifact store back to the first inputs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from rich.tree import Tree

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


async def build_tree(sha: str, store: ArtifactStore | None = None) -> Tree:
    store = store or open_store()
    seen: set[str] = set()

    async def label(s: str) -> tuple[str, list[str]]:
        meta = await store.read_json(sidecar_key(s))
        if meta is None:
            return f"{s[:12]} [red](no sidecar in this store)[/]", []
        made = meta.get("made_by") or [{}]
        first = made[0]
        facts = " ".join(
            f"{k}={meta[k]:g}" if isinstance(meta[k], float) else f"{k}={meta[k]}"
            for k in ("width", "height", "duration")
            if meta.get(k) is not None
        )
        gen = first.get("generator") or "imported"
        step = f" step {first['step']}" if first.get("step") else ""
        return f"[bold]{meta.get('type')}[/] {s[:12]} {meta.get('format')} {facts} ← [cyan]{gen}[/]{step}", list(
            first.get("parents") or meta.get("parents") or []
        )

    async def add(node: Tree, s: str) -> None:
        text, parents = await label(s)
        child = node.add(text)
        if s in seen:
            return
        seen.add(s)
        for parent in parents:
            await add(child, parent)

    root = Tree("lineage")
    await add(root, sha)
    return root
