"""GeneratorContext beyond URLs: storing from every kind of source, dedup and lineage, journal, progress, cost."""

from __future__ import annotations

import io
import json
import struct
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from generators.artifacts import ImageArtifact, LoRAArtifact, TextArtifact
from generators.context import GeneratorContext
from generators.errors import ArtifactDecodeError, StorageError


def _png(color=(30, 60, 90), size=(20, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def _objects(store) -> list[Path]:
    folder = store.root / "objects"
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".json") if folder.exists() else []


async def test_store_from_bytes_path_and_store_url_gives_one_object(ctx, store, tmp_path):
    data = _png()
    on_disk = tmp_path / "made.png"
    on_disk.write_bytes(data)
    first = await ctx.store_image_result(data)
    same = [
        await ctx.store_image_result(on_disk),
        await ctx.store_image_result(first.storage_url),
    ]  # a plain string path is refused: see test_context_inputs.py
    assert all(a.sha256 == first.sha256 and a.storage_url == first.storage_url for a in same)
    assert [p.read_bytes() for p in _objects(store)] == [data]
    assert (first.width, first.height, first.size_bytes) == (20, 10, len(data))


async def test_storing_the_same_bytes_from_two_runs_keeps_both_in_the_sidecar(store):
    data = _png((1, 2, 3))
    async with GeneratorContext(store, run_id="run-a", step="s1", cache_key="k1") as ctx:
        ctx.bind(generator="test/a", input_artifacts=[])
        art = await ctx.store_image_result(data)
    async with GeneratorContext(store, run_id="run-b", step="s2") as ctx:
        ctx.bind(generator="test/b", input_artifacts=[art])
        again = await ctx.store_image_result(data)
    sidecar = await store.read_json(f"objects/{art.sha256[:2]}/{art.sha256}.json")
    assert sidecar["runs"] == ["run-a", "run-b"]
    assert [(m["generator"], m["parents"], m["step"], m["input_digest"]) for m in sidecar["made_by"]] == [
        ("test/a", [], "s1", "k1"),
        ("test/b", [art.sha256], "s2", None),
    ]
    assert again.parents == (art.sha256,) and again.generator == "test/b"
    assert sidecar["width"] == 20 and sidecar["type"] == "image"


async def test_explicit_parents_override_the_bound_inputs(ctx):
    ctx.bind(generator="test/x", input_artifacts=[await ctx.store_image_result(_png((9, 9, 9)))])
    parent = "ab" * 32
    art = await ctx.store_image_result(_png((8, 8, 8)), parents=[parent])
    assert art.parents == (parent,)


async def test_resolving_a_stored_artifact_reads_it_in_place_and_once(ctx, store):
    art = await ctx.store_image_result(_png())
    path = await ctx.resolve_artifact(art)
    assert path == store.local_path(store.key_for(art.storage_url)) and path.read_bytes() == _png()
    assert await ctx.resolve_artifact(art) is path


async def test_an_artifact_missing_from_the_store_is_reported_with_what_to_do(ctx, store):
    art = await ctx.store_image_result(_png((4, 4, 4)))
    store.local_path(store.key_for(art.storage_url)).unlink()
    with pytest.raises(StorageError, match="missing from the store") as info:
        await ctx.resolve_artifact(art)
    assert "--refresh" in info.value.hint


async def test_text_artifacts_keep_their_whole_content(ctx, store):
    text = "Scene 1: a lighthouse at dusk.\n" * 200 + "ünïcødé ✓"
    art = await ctx.store_text_result(text)
    assert isinstance(art, TextArtifact) and art.content == text and art.format == "txt"
    assert (await ctx.resolve_artifact(art)).read_text(encoding="utf-8") == text
    by_kind = await ctx.store_artifact("text", text.encode("utf-8"))
    assert by_kind.sha256 == art.sha256 and by_kind.content == text
    with pytest.raises(ArtifactDecodeError, match="not UTF-8"):
        await ctx.store_artifact("text", b"\xff\xfe\x00bad")


async def test_store_artifact_by_kind_probes_like_the_typed_functions(ctx):
    art = await ctx.store_artifact("image", _png(size=(7, 5)))
    assert isinstance(art, ImageArtifact) and (art.width, art.height) == (7, 5)
    with pytest.raises(ArtifactDecodeError):
        await ctx.store_artifact("audio", _png())


def _safetensors(header: dict) -> bytes:
    body = json.dumps(header).encode()
    return struct.pack("<Q", len(body)) + body + b"\0" * 16


async def test_lora_files_are_checked_for_a_safetensors_header(ctx, store):
    lora = await ctx.store_artifact(
        "lora", _safetensors({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}})
    )
    assert isinstance(lora, LoRAArtifact) and lora.format == "safetensors"
    assert store.key_for(lora.storage_url).endswith(".safetensors")
    with pytest.raises(ArtifactDecodeError, match="safetensors"):
        await ctx.store_artifact("lora", b"\x05\x00\x00\x00\x00\x00\x00\x00not json")


async def test_the_job_journal_is_written_before_waiting_and_rejoined(store):
    async with GeneratorContext(store, run_id="r1", cache_key="cafe01") as ctx:
        ctx.bind(generator="fal/flux-dev", input_artifacts=[])
        assert await ctx.previous_job() is None
        await ctx.set_external_job_id("req-123", endpoint="fal-ai/flux/dev")
    # A retry in a new context with the same cache key finds the job instead of submitting again.
    async with GeneratorContext(store, run_id="r2", cache_key="cafe01") as retry:
        job = await retry.previous_job()
        assert (job["job_id"], job["generator"], job["run_id"], job["endpoint"]) == (
            "req-123",
            "fal/flux-dev",
            "r1",
            "fal-ai/flux/dev",
        )
        await retry.clear_job()
        assert await retry.previous_job() is None
    async with GeneratorContext(store) as keyless:  # no cache key: ids are kept in memory only
        await keyless.set_external_job_id("req-9")
        assert keyless.external_job_ids == ["req-9"] and await keyless.previous_job() is None
    assert await store.list_keys("journal") == []


async def test_progress_is_clamped_and_forwarded(store):
    seen: list[tuple[float, str]] = []
    async with GeneratorContext(store, progress=lambda f, m: seen.append((f, m))) as ctx:
        for fraction in (-0.5, 0.25, 1.7):
            ctx.publish_progress(fraction, f"at {fraction}")
        assert ctx.last_progress == (1.0, "at 1.7")
    assert seen == [(0.0, "at -0.5"), (0.25, "at 0.25"), (1.0, "at 1.7")]


async def test_cost_and_compute_time_accumulate(ctx):
    assert ctx.actual_cost_usd is None
    ctx.record_cost(Decimal("0.04"))
    ctx.record_cost(Decimal("0.015"))
    ctx.record_compute_seconds(1.5)
    ctx.record_compute_seconds(0.25)
    assert ctx.actual_cost_usd == Decimal("0.055") and ctx.compute_seconds == 1.75


async def test_scratch_space_is_removed_on_close(store):
    async with GeneratorContext(store) as ctx:
        scratch = ctx.temp_path(".wav")
        scratch.write_bytes(b"x")
        await ctx.store_image_result(_png())  # bytes are written to scratch before probing
    assert not scratch.parent.exists()
