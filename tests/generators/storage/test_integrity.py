"""generators.integrity on both stores: intact objects are vouched for by a stat (HEAD) and the sidecar, with no
byte read; damaged or missing ones are found; a full hash happens only when the cheap evidence fails."""

from __future__ import annotations

import os

import pytest

from generators.context import GeneratorContext
from generators.integrity import CHANGED, MISSING, check_artifact
from generators.storage import ArtifactStore, LocalStore, sidecar_key
from generators.storage.s3 import S3Store


def hashed_keys(store: ArtifactStore) -> list[str]:
    """The keys `store` reads in full to hash from now on (a spy: the real method still runs)."""
    seen: list[str] = []
    real = store.hash_object

    async def spy(key: str) -> str:
        seen.append(key)
        return await real(key)

    store.hash_object = spy  # type: ignore[method-assign]
    return seen


@pytest.fixture
def hashes(any_store: ArtifactStore) -> list[str]:
    return hashed_keys(any_store)


async def stored_text(store: ArtifactStore, text: str):
    async with GeneratorContext(store, run_id="r1", step="s") as ctx:
        return await ctx.store_text_result(text)


def rewrite(store: ArtifactStore, key: str, body: bytes) -> None:
    if isinstance(store, LocalStore):
        with store._path(key).open("r+b") as fh:  # in place, as a damaging tool would
            fh.write(body)
    else:
        assert isinstance(store, S3Store)
        store.client.put_object(Bucket=store.bucket, Key=store._full(key), Body=body)


async def test_an_intact_object_is_vouched_for_without_reading_it(any_store, hashes):
    artifact = await stored_text(any_store, "intact")
    for _ in range(3):
        assert await check_artifact(any_store, artifact) is None
    assert hashes == []


async def test_flipped_bytes_of_the_same_length_are_found(any_store, hashes):
    artifact = await stored_text(any_store, "flip me")
    key = any_store.key_for(artifact.storage_url)
    rewrite(any_store, key, b"flip mE")
    assert await check_artifact(any_store, artifact) == CHANGED
    assert hashes == [key]


async def test_a_missing_object_or_another_size_is_found_without_hashing(any_store, hashes):
    gone = await stored_text(any_store, "gone")
    await any_store.delete(any_store.key_for(gone.storage_url))
    assert await check_artifact(any_store, gone) == MISSING
    longer = await stored_text(any_store, "longer")
    rewrite(any_store, any_store.key_for(longer.storage_url), b"longer and longer")
    assert await check_artifact(any_store, longer) == CHANGED
    assert hashes == []


async def test_the_same_bytes_rewritten_are_hashed_once_then_vouched_for_again(any_store, hashes):
    artifact = await stored_text(any_store, "same again")
    key = any_store.key_for(artifact.storage_url)
    rewrite(any_store, key, b"same again")  # new mtime (a new upload on S3), same bytes
    if isinstance(any_store, LocalStore):
        st = os.stat(any_store._path(key))
        os.utime(any_store._path(key), ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert await check_artifact(any_store, artifact) is None
    assert await check_artifact(any_store, artifact) is None
    assert hashes == [key], "the fingerprint vouched for by the full read was not recorded"


async def test_s3_vouches_for_a_single_part_upload_by_its_own_sha256(s3_store):
    artifact = await stored_text(s3_store, "checked by S3")
    key = s3_store.key_for(artifact.storage_url)
    found = await s3_store.fingerprint(key)
    assert found is not None and found.sha256 == artifact.sha256  # no sidecar needed
    await s3_store.delete(sidecar_key(artifact.sha256))
    assert await check_artifact(s3_store, artifact) is None


async def test_s3_multipart_objects_are_vouched_for_by_the_recorded_checksum(s3_store):
    artifact = await stored_text(s3_store, "x" * (6 * 1024 * 1024))  # over the 5 MiB part size: two parts
    seen = hashed_keys(s3_store)
    assert await check_artifact(s3_store, artifact) is None
    assert seen == []
    sidecar = await s3_store.read_json(sidecar_key(artifact.sha256))
    assert sidecar is not None and sidecar["stored"], "no checksum recorded for the multipart object"
