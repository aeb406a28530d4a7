"""Store fixtures: the same tests run on the local filesystem and on S3 (real boto3, moto on 127.0.0.1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from generators.storage import LocalStore
from generators.storage.s3 import S3Store

S3_PREFIX = "boards/team-a"


def make_s3_store(endpoint: str, bucket: str, **kw) -> S3Store:
    # 5 MiB parts (S3's minimum) so a file of a few MiB already goes through multipart upload.
    kw.setdefault("multipart_threshold_mb", 5)
    return S3Store(bucket, prefix=S3_PREFIX, endpoint_url=endpoint, **kw)


@pytest.fixture(params=["local", "s3"])
def any_store(request, tmp_path):
    """A LocalStore or an S3Store (under a prefix, in a fresh bucket on the local S3 server)."""
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return make_s3_store(request.getfixturevalue("s3_endpoint"), request.getfixturevalue("s3_bucket"))


@pytest.fixture
def s3_store(s3_endpoint, s3_bucket) -> S3Store:
    return make_s3_store(s3_endpoint, s3_bucket)


@pytest.fixture
def random_file(tmp_path):
    """Make a file of `size` random bytes; returns (path, bytes)."""

    def make(size: int, name: str = "source.bin") -> tuple[Path, bytes]:
        data = os.urandom(size)
        path = tmp_path / name
        path.write_bytes(data)
        return path, data

    return make
