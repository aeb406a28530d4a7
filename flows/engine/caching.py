"""Content-addressed cache keys: generator id + version + canonical inputs with artifacts as sha256."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy

from generators.base import BaseGenerator, GeneratorResult
from generators.integrity import first_damage
from generators.settings import get_settings
from generators.storage import ArtifactStore


def canonical(value: Any) -> Any:
    """Inputs as plain JSON with every artifact replaced by `kind:sha256` (its URL does not matter)."""
    if isinstance(value, dict):
        if "sha256" in value and "kind" in value:
            return f"{value['kind']}:{value['sha256']}"
        return {k: canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def cache_key(generator: BaseGenerator, inputs_json: dict[str, Any]) -> str:
    """sha256(generator id, generator version, canonical inputs). `inputs_json` is the validated model dumped."""
    body = json.dumps(
        [generator.name, generator.version, canonical(inputs_json)], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record_key(store_url: str, key: str) -> str:
    """The key of Prefect's cache record (and lock) for the result of `key` kept in the store at `store_url`.

    A cached result names its artifacts by their URLs in one store. Pointing boardflow at another store
    (local → S3, another bucket) must not hand back the old store's URLs, so the record is per store; the
    result index and the provider journal live in the store itself and use `key` as it is.
    """
    return hashlib.sha256(f"{store_url}\n{key}".encode()).hexdigest()


@dataclass
class GeneratorCachePolicy(CachePolicy):
    """Prefect cache policy keyed by content and store; SERIALIZABLE isolation makes identical steps run once.

    The content key is computed once, when the step is bound (flows.pipeline.bind), and handed to the
    task inside its `call` parameter: this policy reads it and never works it out again.
    """

    store_url: str = ""

    def compute_key(self, task_ctx, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs) -> str | None:
        return record_key(self.store_url, inputs["call"].key)


def result_storage_path() -> Path:
    return get_settings().data_dir / "prefect-results"


@dataclass(frozen=True)
class Lookup:
    """What the result index knows of one key: nothing, a result whose artifacts are all intact, or a broken one."""

    result: GeneratorResult | None = None
    indexed: bool = False
    problem: str | None = None  # why a broken one cannot be served: integrity.MISSING or integrity.CHANGED

    @property
    def usable(self) -> bool:
        return self.result is not None

    @property
    def broken(self) -> bool:
        """Indexed once, but an artifact it names is gone or changed in the store: the step must be made again."""
        return self.indexed and self.result is None


NOT_INDEXED = Lookup()


class ResultIndex:
    """Our own record of each cached result, in the artifact store (so it is shared on S3).

    Prefect's cache record says *that* a step ran; this index lets a plan predict hits and lets a
    run notice a hit whose artifacts were deleted or damaged, before asking Prefect.
    """

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    async def get(self, key: str) -> GeneratorResult | None:
        data = await self.store.read_json(f"results/{key}.json")
        return GeneratorResult.model_validate(data) if data else None

    async def put(self, key: str, result: GeneratorResult) -> None:
        await self.store.write_json(f"results/{key}.json", result.model_dump(mode="json"))

    async def lookup(self, key: str) -> Lookup:
        """One read of the index and a check of every artifact's bytes (generators.integrity): see `Lookup`."""
        result = await self.get(key)
        if result is None:
            return NOT_INDEXED
        if (damage := await first_damage(self.store, result.artifacts())) is not None:
            return Lookup(None, indexed=True, problem=damage.problem)
        return Lookup(result, indexed=True)

    async def usable(self, key: str) -> GeneratorResult | None:
        """The indexed result when every artifact it names is intact in the store, else None."""
        return (await self.lookup(key)).result
