"""A cache hit whose sidecars were deleted writes them again: lineage and the store never disagree."""

from __future__ import annotations

import pytest

from flows.engine.caching import result_storage_path
from flows.reporting.lineage import lineage
from generators.storage import sidecar_key
from tests.flows.kit import Echo, run_spec
from tests.flows.test_pipeline_cache import CHAIN


@pytest.mark.parametrize("answered_by", ["prefect-record", "result-index"])
async def test_a_cache_hit_restores_deleted_sidecars(prefect_api, data_dir, data_store, registry, answered_by):
    echo = registry.register(Echo())
    state, first = await run_spec(CHAIN)
    assert state.is_completed(), first
    final = first["outputs"]["text"]
    upstream = final["parents"][0]
    before = {sha: await data_store.read_json(sidecar_key(sha)) for sha in (final["sha256"], upstream)}
    for sha in before:
        await data_store.delete(sidecar_key(sha))
    assert (await lineage(final["sha256"], data_store)).missing  # what `boardflow lineage` saw: "no such artifact"
    if answered_by == "result-index":  # Prefect's cache records gone too: our own index answers the hit
        for record in result_storage_path().rglob("*"):
            if record.is_file() and not record.name.endswith(".lock"):
                record.unlink()

    state, again = await run_spec(CHAIN)
    assert state.is_completed(), again
    assert [r["status"] for r in again["records"]] == ["cached", "cached"]
    assert len(echo.calls) == 2, "a step ran again"

    for sha, was in before.items():
        now = await data_store.read_json(sidecar_key(sha))
        assert now is not None, f"the sidecar of {sha[:12]} was not restored"
        for field in ("sha256", "type", "kind", "format", "size_bytes", "content", "parents", "key", "generator"):
            assert now[field] == was[field], field
        assert now["made_by"] == was["made_by"]
    root = await lineage(final["sha256"], data_store)
    assert not root.missing and root.generator == "test/echo" and root.step == "second"
    assert [p.sha256 for p in root.parents] == [upstream] and not root.parents[0].missing
    assert root.parents[0].step == "first"
