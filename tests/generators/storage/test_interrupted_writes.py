"""Interrupted writes leave nothing that looks like a complete object, on local disk and on S3."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError

from generators.errors import StorageError
from generators.storage import LocalStore, sha256_file
from generators.storage.s3 import S3Store

MiB = 1024 * 1024

# Runs LocalStore.put_file in a child whose files may not grow past 2 MiB (RLIMIT_FSIZE): the copy into
# the store hits the limit part-way, like a full disk ("error") or a crash mid-write ("killed").
_LOCAL_CHILD = textwrap.dedent(
    """
    import asyncio, resource, signal, sys
    from pathlib import Path
    from generators.storage import LocalStore

    root, src, mode = sys.argv[1:]
    # Python ignores SIGXFSZ, so the write fails with EFBIG; restoring the default makes it kill the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN if mode == "error" else signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 * 1024 * 1024, 2 * 1024 * 1024))
    asyncio.run(LocalStore(Path(root)).put_file(Path(src), "bin"))
    """
)


@pytest.mark.parametrize("mode", ["error", "killed"])
async def test_local_write_cut_off_midway_leaves_no_object(tmp_path, random_file, mode):
    src, _ = random_file(6 * MiB)
    root = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-c", _LOCAL_CHILD, str(root), str(src), mode], capture_output=True, text=True, timeout=60
    )
    if mode == "error":
        assert done.returncode == 1 and "File too large" in done.stderr, done.stderr
        assert list((root / "tmp").iterdir()) == []  # the failed writer cleaned up its staging file
    else:
        assert done.returncode == -signal.SIGXFSZ, done.stderr
        # The crash left 2 MiB of staging data behind, but only outside objects/.
        assert [p.stat().st_size for p in (root / "tmp").iterdir()] == [2 * MiB]
    assert not (root / "objects").exists()
    store = LocalStore(root)
    assert await store.list_keys("objects/") == []
    # Nothing stale stands in the way of storing the same bytes properly afterwards.
    stored = await store.put_file(src, "bin")
    assert stored.created and store.local_path(stored.key).read_bytes() == src.read_bytes()


def _failing_after_parts(client, parts_allowed: int) -> list[int]:
    """Drop the connection on every UploadPart after the first `parts_allowed` (botocore's own event hooks)."""
    sent: list[int] = []

    def drop(request, **_):
        sent.append(1)
        if len(sent) > parts_allowed:
            raise ConnectionClosedError(endpoint_url=request.url)

    client.meta.events.register("before-send.s3.UploadPart", drop)
    return sent


async def test_s3_upload_failing_midway_is_aborted(s3_endpoint, s3_bucket, random_file):
    client = boto3.client("s3", endpoint_url=s3_endpoint, config=Config(retries={"max_attempts": 1}))
    store = S3Store(s3_bucket, prefix="p", client=client, multipart_threshold_mb=5, max_concurrency=1)
    sent = _failing_after_parts(client, parts_allowed=1)
    src, _ = random_file(16 * MiB)  # four 5 MiB parts; the second one never arrives
    with pytest.raises(StorageError, match="Cannot upload to s3://"):
        await store.put_file(src, "bin")

    assert len(sent) >= 2  # the upload really was under way when it failed
    sha, _ = sha256_file(src)
    assert await store.list_keys("") == []
    assert not await store.exists(f"objects/{sha[:2]}/{sha}.bin")
    # The transfer manager aborted the multipart upload: no parts linger (and bill) on the server.
    assert "Uploads" not in client.list_multipart_uploads(Bucket=s3_bucket)


async def test_s3_source_changed_during_upload_keeps_nothing(s3_store, random_file):
    src, _ = random_file(8 * MiB)
    sha, _ = sha256_file(src)

    # Another writer truncates the file after it was hashed, just before the upload reads it again.
    def truncate(**_):
        with src.open("r+b") as fh:
            fh.truncate(3 * MiB)

    s3_store.client.meta.events.register("before-call.s3.HeadObject", truncate)
    with pytest.raises(StorageError, match="changed while it was being stored"):
        await s3_store.put_file(src, "bin")
    assert not await s3_store.exists(f"objects/{sha[:2]}/{sha}.bin")
    assert await s3_store.list_keys("") == []


# A child uploads through S3Store and, once a part is on the server, stops to be killed like a crashed worker.
_S3_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from generators.storage.s3 import S3Store

    endpoint, bucket, src = sys.argv[1:]
    store = S3Store(bucket, prefix="p", endpoint_url=endpoint, multipart_threshold_mb=5, max_concurrency=1)

    def hold(**_):
        print("part uploaded", flush=True)
        sys.stdin.readline()  # blocks until the parent kills us

    store.client.meta.events.register("after-call.s3.UploadPart", hold)
    asyncio.run(store.put_file(Path(src), "bin"))
    """
)


async def test_s3_upload_killed_midway_leaves_no_object(s3_endpoint, s3_bucket, random_file):
    src, _ = random_file(12 * MiB)
    child = subprocess.Popen(
        [sys.executable, "-c", _S3_CHILD, s3_endpoint, s3_bucket, str(src)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()  # returns at the child's first uploaded part, or at its exit
        assert line == "part uploaded\n", child.stderr.read() if child.poll() is not None else line
    finally:
        child.kill()
        child.wait(timeout=30)

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    uploads = client.list_multipart_uploads(Bucket=s3_bucket)["Uploads"]
    assert len(uploads) == 1  # the crash left a half-done upload: invisible, and not an object
    parts = client.list_parts(Bucket=s3_bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"])["Parts"]
    assert len(parts) >= 1
    assert "Contents" not in client.list_objects_v2(Bucket=s3_bucket)
