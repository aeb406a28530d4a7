"""Is a stored artifact still the bytes its sha256 names? Cheap evidence first, a full hash only when it fails.

A cache hit hands back artifacts by reference, so before a hit counts every artifact it names is checked:

1. the store's Fingerprint of the object (one stat on disk, one HEAD on S3): no object → "object missing",
   another size → "bytes changed";
2. S3's own SHA-256 checksum equal to the artifact's sha256 → intact;
3. the Fingerprint token recorded in the sidecar when the object was stored, unchanged → intact;
4. otherwise the object is read and hashed in full; if intact, the token is recorded for next time.

A fully cached re-run therefore costs a stat (or HEAD) and a small JSON read per artifact, no hashing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .artifacts import Artifact
from .storage import ArtifactStore, sidecar_key

MISSING = "object missing"
CHANGED = "bytes changed"


@dataclass(frozen=True)
class Damage:
    """One artifact that cannot be served: which, where, and why (MISSING or CHANGED)."""

    artifact: Artifact
    problem: str

    @property
    def reason(self) -> str:
        return f"re-made: {self.problem}"


async def check_artifact(store: ArtifactStore, artifact: Artifact) -> str | None:
    """None when the store holds the artifact's exact bytes; else MISSING or CHANGED."""
    key = store.key_for(artifact.storage_url)
    if key is None:
        return MISSING  # a URL of another store (or of nothing): this store cannot serve it
    found = await store.fingerprint(key)
    if found is None:
        return MISSING
    if found.size_bytes != artifact.size_bytes:
        return CHANGED
    if found.sha256 == artifact.sha256:
        return None
    sidecar = await store.read_json(sidecar_key(artifact.sha256))
    if sidecar and found.token and sidecar.get("stored") == found.token:
        return None
    if await store.hash_object(key) != artifact.sha256:
        return CHANGED
    if sidecar is not None:  # vouched for by a full read: the next check is a stat again
        await store.write_json(sidecar_key(artifact.sha256), {**sidecar, "stored": found.token})
    return None


async def first_damage(store: ArtifactStore, artifacts: Iterable[Artifact]) -> Damage | None:
    """The first artifact of `artifacts` the store cannot serve intact, or None when all are."""
    for artifact in artifacts:
        if (problem := await check_artifact(store, artifact)) is not None:
            return Damage(artifact, problem)
    return None
