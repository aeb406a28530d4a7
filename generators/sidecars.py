"""Sidecars: the JSON beside each stored object that lineage reads — written with the object, rebuilt when lost."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .artifacts import Artifact
from .storage import ArtifactStore, sidecar_key


@dataclass(frozen=True)
class MadeBy:
    """Who made an artifact: the generator, the step's content key (input digest) and the step's label."""

    generator: str | None
    input_digest: str | None
    step: str | None

    def entry(self, artifact: Artifact) -> dict:
        return {
            "generator": self.generator,
            "input_digest": self.input_digest,
            "parents": list(artifact.parents),
            "step": self.step,
        }


def sidecar_document(
    artifact: Artifact, key: str, made_by: MadeBy, run_id: str | None, earlier: dict, stored: str = ""
) -> dict:
    """The sidecar of `artifact` stored under `key`, merged into what an `earlier` sidecar already said.

    `stored` is the object's Fingerprint token as it was written (generators.integrity reads it back to
    vouch for the bytes without hashing them).
    """
    runs = list(earlier.get("runs", []))
    if run_id and run_id not in runs:
        runs.append(run_id)
    makers = list(earlier.get("made_by", []))
    if (entry := made_by.entry(artifact)) not in makers:
        makers.append(entry)
    return {
        **artifact.model_dump(mode="json", exclude={"storage_url"}),
        "type": artifact.artifact_type,
        "key": key,
        "made_by": makers,
        "runs": runs,
        "created": earlier.get("created") or now(),
        "stored": stored or earlier.get("stored", ""),
    }


async def write_sidecar(
    store: ArtifactStore, artifact: Artifact, key: str, made_by: MadeBy, run_id: str | None, stored: str = ""
) -> None:
    skey = sidecar_key(artifact.sha256)
    earlier = await store.read_json(skey) or {}
    await store.write_json(skey, sidecar_document(artifact, key, made_by, run_id, earlier, stored))


async def restore_sidecars(store: ArtifactStore, artifacts: list[Artifact], made_by: MadeBy) -> list[str]:
    """Rewrite the missing sidecars of `artifacts` whose objects are in `store`; the sha256 of each one rewritten.

    The artifact carries every probed fact a sidecar holds, so the rebuilt one says what the lost one did,
    except which flow runs stored the object (unknown now): `restored` says when it was rebuilt. Call it
    for artifacts whose bytes were just checked: the object's fingerprint of now is recorded as theirs.
    """
    restored = []
    for artifact in artifacts:
        key = store.key_for(artifact.storage_url)
        skey = sidecar_key(artifact.sha256)
        if key is None or await store.exists(skey) or (found := await store.fingerprint(key)) is None:
            continue
        document = sidecar_document(artifact, key, made_by, None, {}, found.token)
        if await store.create_json(skey, {**document, "restored": now()}):  # a writer of the real one wins
            restored.append(artifact.sha256)
    return restored


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
