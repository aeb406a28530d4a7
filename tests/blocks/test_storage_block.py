"""The artifact-store block: a local folder or an S3 bucket/prefix (prefect-aws AwsCredentials, custom endpoint)."""

from __future__ import annotations

import uuid

import boto3
import pytest
from prefect_aws import AwsCredentials
from pydantic import ValidationError

from blocks import ArtifactStoreBlock
from generators.storage import LocalStore


async def test_a_local_block_opens_a_local_store_there(tmp_path):
    settings = ArtifactStoreBlock(path=str(tmp_path / "studio"))
    store = settings.get_store()
    assert isinstance(store, LocalStore)
    stored = await store.put_bytes(b"hello from a block", "txt")
    assert (tmp_path / "studio" / stored.key).read_bytes() == b"hello from a block"
    assert settings.url == (tmp_path / "studio").as_uri()


@pytest.mark.parametrize("fields", [{}, {"path": "/tmp/x", "bucket": "b"}])
def test_exactly_one_of_path_and_bucket(fields):
    with pytest.raises(ValidationError, match="set exactly one of path"):
        ArtifactStoreBlock(**fields)


async def test_an_s3_block_saved_and_loaded_stores_objects_under_its_prefix(prefect_api, s3_endpoint, s3_bucket):
    name = f"studio-s3-{uuid.uuid4().hex[:8]}"
    creds = AwsCredentials(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    await ArtifactStoreBlock(bucket=s3_bucket, prefix="studio/renders", aws_credentials=creds,
                             endpoint_url=s3_endpoint).asave(name)  # fmt: skip

    loaded = await ArtifactStoreBlock.aload(name)
    assert loaded.aws_credentials.aws_secret_access_key.get_secret_value() == "testing"
    store = loaded.get_store()
    assert store.root_url == f"s3://{s3_bucket}/studio/renders"
    stored = await store.put_bytes(b"frame bytes", "bin")
    body = boto3.client("s3", endpoint_url=s3_endpoint).get_object(Bucket=s3_bucket, Key=f"studio/renders/{stored.key}")
    assert body["Body"].read() == b"frame bytes"
    assert await store.exists(stored.key)
