"""S3-only behaviour: multipart uploads, presigned URLs, error messages, open_store and the context on S3."""

from __future__ import annotations

import socket

import boto3
import httpx
import pytest
from botocore.config import Config
from PIL import Image

from generators.context import GeneratorContext
from generators.errors import StorageError
from generators.storage import open_store, sidecar_key
from generators.storage.s3 import S3Store


async def test_large_file_goes_up_in_parts(s3_store, random_file, s3_endpoint):
    path, data = random_file(11 * 1024 * 1024)
    stored = await s3_store.put_file(path, "mov")
    head = boto3.client("s3", endpoint_url=s3_endpoint).head_object(
        Bucket=s3_store.bucket, Key=f"{s3_store.prefix}/{stored.key}"
    )
    # A multipart object's ETag is "<md5 of part md5s>-<part count>": 11 MiB in 5 MiB parts is three.
    assert head["ETag"].strip('"').endswith("-3")
    assert head["ContentLength"] == len(data)
    assert head["Metadata"]["sha256"] == stored.sha256
    assert head["ContentType"] == "video/quicktime"


async def test_urls_name_bucket_and_prefix(s3_store, random_file):
    path, _ = random_file(10)
    stored = await s3_store.put_file(path, "png")
    assert stored.url == f"s3://{s3_store.bucket}/{s3_store.prefix}/{stored.key}"
    assert s3_store.root_url == f"s3://{s3_store.bucket}/{s3_store.prefix}"
    unprefixed = S3Store(s3_store.bucket, client=s3_store.client)
    assert unprefixed.key_for(stored.url) == f"{s3_store.prefix}/{stored.key}"
    assert unprefixed.key_for(f"s3://{s3_store.bucket}") is None


async def test_presigned_url_downloads_the_bytes(s3_store, random_file, s3_endpoint):
    path, data = random_file(200_000)
    stored = await s3_store.put_file(path, "png")
    url = s3_store.browser_url(stored.key, expires_seconds=600)
    assert url.startswith(f"{s3_endpoint}/{s3_store.bucket}/{s3_store.prefix}/objects/")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=600" in url
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/png"


async def test_presigned_urls_are_capped_at_seven_days(s3_store):
    url = s3_store.browser_url("objects/ab/x.png", expires_seconds=30 * 24 * 3600)
    assert "X-Amz-Expires=604800" in url


async def test_missing_bucket_says_to_create_it(s3_endpoint, random_file):
    store = S3Store("no-such-bucket-here", endpoint_url=s3_endpoint)
    path, _ = random_file(100)
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' does not exist") as info:
        await store.write_json("journal/x.json", {})
    assert "Create the bucket" in str(info.value)
    with pytest.raises(StorageError, match="does not exist"):
        await store.put_file(path, "bin")


async def test_unreachable_endpoint_says_to_check_it(tmp_path):
    with socket.socket() as sock:  # a loopback port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # One attempt: the default client retries with backoff, which only slows this test down.
    client = boto3.client("s3", endpoint_url=endpoint, config=Config(retries={"max_attempts": 1}))
    store = S3Store("some-bucket", endpoint_url=endpoint, client=client)
    with pytest.raises(StorageError, match="could not connect") as info:
        await store.read_json("journal/x.json")
    assert endpoint in str(info.value) and "BOARDFLOW_S3_ENDPOINT_URL" in str(info.value)


async def test_open_store_builds_s3_from_url_and_env(s3_endpoint, s3_bucket, monkeypatch, random_file, tmp_path):
    monkeypatch.setenv("BOARDFLOW_S3_ENDPOINT_URL", s3_endpoint)
    store = open_store(f"s3://{s3_bucket}/runs/nightly/")
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.endpoint_url) == (s3_bucket, "runs/nightly", s3_endpoint)
    path, data = random_file(5000)
    stored = await store.put_file(path, "wav")
    assert stored.url.startswith(f"s3://{s3_bucket}/runs/nightly/objects/")
    await store.get_to_path(stored.key, tmp_path / "back.wav")
    assert (tmp_path / "back.wav").read_bytes() == data


def _png(path, size=(64, 48)):
    """A left-to-right red gradient with a blue square: easy to recognise after a round trip."""
    image = Image.new("RGB", size)
    image.putdata([(x * 255 // (size[0] - 1), 40, 0) for _ in range(size[1]) for x in range(size[0])])
    image.paste((0, 0, 255), (8, 8, 24, 24))
    image.save(path, format="PNG")
    return path


async def test_context_stores_and_resolves_an_image_on_s3(s3_store, tmp_path):
    source = _png(tmp_path / "frame.png")
    async with GeneratorContext(s3_store, run_id="run-s3") as ctx:
        artifact = await ctx.store_image_result(source)
    assert artifact.storage_url == f"s3://{s3_store.bucket}/{s3_store.prefix}/objects/{artifact.sha256[:2]}/" + (
        f"{artifact.sha256}.png"
    )
    assert (artifact.width, artifact.height, artifact.format) == (64, 48, "png")
    sidecar = await s3_store.read_json(sidecar_key(artifact.sha256))
    assert (sidecar["type"], sidecar["width"], sidecar["runs"]) == ("image", 64, ["run-s3"])

    # A fresh context (another step, another process) must fetch the bytes back from S3.
    ctx = GeneratorContext(s3_store, run_id="run-s3-next")
    async with ctx:
        local = await ctx.resolve_artifact(artifact)
        assert local.read_bytes() == source.read_bytes()
        with Image.open(local) as image:
            assert image.size == (64, 48)
            assert image.getpixel((16, 16)) == (0, 0, 255)
            assert image.getpixel((63, 40)) == (255, 40, 0)
        assert await ctx.resolve_artifact(artifact) == local  # resolved once per context
        scratch = local.parent
        assert scratch.is_dir() and not scratch.is_relative_to(tmp_path)
    assert not local.exists()
    assert not scratch.exists()  # the context's temp folder went with it
