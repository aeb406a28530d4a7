"""Store inputs are verified by sha256 whatever the scheme, and read only from where they may come (finding 6)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import boto3
import pytest
from PIL import Image

from generators.artifacts import ImageArtifact
from generators.context import GeneratorContext
from generators.errors import StorageError, UnsafeURLError
from generators.fetch import FetchPolicy
from generators.storage.s3 import S3Store


def _png(color=(30, 60, 90)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 10), color).save(buf, "PNG")
    return buf.getvalue()


def _artifact(url: str, data: bytes) -> ImageArtifact:
    sha = hashlib.sha256(data).hexdigest()
    return ImageArtifact(sha256=sha, storage_url=url, format="png", size_bytes=len(data), width=20, height=10)


def _same_size_other_bytes(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


@pytest.mark.parametrize("tamper", ["same size", "other size"])
async def test_a_tampered_object_in_the_local_store_is_refused(ctx, store, tamper):
    art = await ctx.store_image_result(_png())
    path = store.local_path(store.key_for(art.storage_url))
    path.write_bytes(_same_size_other_bytes(_png()) if tamper == "same size" else _png() + b"junk")
    async with GeneratorContext(store) as fresh:
        with pytest.raises(StorageError, match="does not hold artifact") as info:
            await fresh.resolve_artifact(art)
    assert "--refresh" in info.value.hint


async def test_an_artifact_pointing_at_another_object_of_the_store_is_refused(ctx, store):
    real = await ctx.store_image_result(_png((1, 2, 3)))
    other = await ctx.store_image_result(_png((4, 5, 6)))
    forged = real.model_copy(update={"storage_url": other.storage_url})
    async with GeneratorContext(store) as fresh:
        with pytest.raises(StorageError, match="does not hold artifact"):
            await fresh.resolve_artifact(forged)


async def test_a_file_url_with_a_host_part_is_refused_even_when_its_path_is_in_the_store(ctx, store):
    art = await ctx.store_image_result(_png())
    path = store.local_path(store.key_for(art.storage_url))
    for url in (f"file://fileserver{path}", f"file://localhost{path}"):
        with pytest.raises(UnsafeURLError, match="host part"):
            await ctx.resolve_artifact(art.model_copy(update={"storage_url": url}))


async def test_a_file_url_in_an_allow_listed_folder_is_read_and_verified(store, tmp_path, monkeypatch):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "in.png").write_bytes(_png())
    monkeypatch.setenv("BOARDFLOW_ALLOWED_FOLDERS", str(folder))
    async with GeneratorContext(store) as ctx:
        good = _artifact((folder / "in.png").as_uri(), _png())
        assert (await ctx.resolve_artifact(good)).read_bytes() == _png()
        with pytest.raises(StorageError, match="does not hold artifact"):
            await ctx.resolve_artifact(_artifact((folder / "in.png").as_uri(), _png((9, 9, 9))))
        (tmp_path / "outside.png").write_bytes(_png((5, 5, 5)))  # other bytes: resolving caches by sha256
        with pytest.raises(UnsafeURLError, match="BOARDFLOW_ALLOWED_FOLDERS"):
            await ctx.resolve_artifact(_artifact(f"{folder.as_uri()}/../outside.png", _png((5, 5, 5))))


async def test_a_plain_string_is_never_read_as_a_local_path(ctx, store, tmp_path):
    local = tmp_path / "secret.png"
    local.write_bytes(_png())
    for attempt in (ctx.store_image_result, lambda s: ctx.store_artifact("image", s), ctx.store_audio_result):
        with pytest.raises(UnsafeURLError, match="pathlib.Path"):
            await attempt(str(local))
    with pytest.raises(UnsafeURLError, match="pathlib.Path"):
        await ctx.store_artifact("text", str(local))
    assert not (store.root / "objects").exists()


# -- S3 ------------------------------------------------------------------------------------------


@pytest.fixture
def s3(s3_endpoint, s3_bucket, monkeypatch):
    monkeypatch.setenv("BOARDFLOW_S3_ENDPOINT_URL", s3_endpoint)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    return client, S3Store(s3_bucket, prefix="team", endpoint_url=s3_endpoint)


async def test_a_tampered_object_in_the_s3_store_is_refused_and_not_left_in_scratch(s3):
    client, store = s3
    async with GeneratorContext(store) as ctx:
        art = await ctx.store_image_result(_png())
        client.put_object(Bucket=store.bucket, Key=f"team/{store.key_for(art.storage_url)}", Body=_png() + b"x")
        async with GeneratorContext(store) as fresh:
            with pytest.raises(StorageError, match="does not hold artifact"):
                await fresh.resolve_artifact(art)
            scratch = fresh.temp_path().parent
            assert [p.name for p in scratch.iterdir()] == []


async def test_s3_inputs_from_other_buckets_or_prefixes_need_the_allow_list(s3, s3_bucket, monkeypatch):
    client, store = s3
    client.create_bucket(Bucket=f"{s3_bucket}-other")
    client.put_object(Bucket=f"{s3_bucket}-other", Key="shared/in.png", Body=_png())
    client.put_object(Bucket=s3_bucket, Key="elsewhere/in.png", Body=_png((2, 2, 2)))
    foreign = _artifact(f"s3://{s3_bucket}-other/shared/in.png", _png())
    outside_prefix = _artifact(f"s3://{s3_bucket}/elsewhere/in.png", _png((2, 2, 2)))
    async with GeneratorContext(store) as ctx:
        for art in (foreign, outside_prefix):
            with pytest.raises(UnsafeURLError, match="BOARDFLOW_ALLOWED_S3"):
                await ctx.resolve_artifact(art)
    monkeypatch.setenv("BOARDFLOW_ALLOWED_S3", f"{s3_bucket}-other/shared")
    async with GeneratorContext(store) as ctx:
        assert (await ctx.resolve_artifact(foreign)).read_bytes() == _png()
        with pytest.raises(StorageError, match="does not hold artifact"):
            await ctx.resolve_artifact(_artifact(foreign.storage_url, _png((7, 7, 7))))
        with pytest.raises(UnsafeURLError, match="BOARDFLOW_ALLOWED_S3"):
            await ctx.resolve_artifact(outside_prefix)


def test_the_allow_lists_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BOARDFLOW_ALLOWED_S3", "media-bucket, other/prefix/")
    monkeypatch.setenv("BOARDFLOW_ALLOWED_FOLDERS", f"{tmp_path}:{tmp_path / 'b'}")
    policy = FetchPolicy.from_settings()
    assert policy.admits_s3("media-bucket", "any/key.png") and policy.admits_s3("other", "prefix/k.png")
    assert not policy.admits_s3("other", "prefixed/k.png") and not policy.admits_s3("media-bucket2", "k")
    assert policy.allowed_folders == (tmp_path.resolve(), (tmp_path / "b").resolve())
    assert Path(tmp_path / "x").resolve().is_relative_to(policy.allowed_folders[0])
