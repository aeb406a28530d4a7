"""Round trips through every artifact-store backend: the same behaviour on local disk and on S3."""

from __future__ import annotations

import asyncio
import hashlib
import re

import pytest

from generators.errors import StorageError
from generators.storage import LocalStore, object_key, sidecar_key


async def test_same_bytes_twice_is_one_object(any_store, random_file):
    path, data = random_file(300_000)
    first = await any_store.put_file(path, "PNG")
    second = await any_store.put_file(path, "png")

    sha = hashlib.sha256(data).hexdigest()
    assert (first.sha256, first.size_bytes, first.created) == (sha, len(data), True)
    assert (second.key, second.url, second.created) == (first.key, first.url, False)
    # Content-addressed with a two-character fan-out and the lower-cased extension.
    assert first.key == f"objects/{sha[:2]}/{sha}.png" == object_key(sha, ".PNG")
    assert await any_store.list_keys("objects/") == [first.key]


async def test_damaged_object_is_replaced(any_store, random_file, tmp_path):
    path, data = random_file(50_000)
    stored = await any_store.put_file(path, "png")
    # Cut the stored object short behind the store's back (a crashed copy by some other tool, say).
    if isinstance(any_store, LocalStore):
        any_store.local_path(stored.key).write_bytes(data[:1000])
    else:
        any_store.client.put_object(Bucket=any_store.bucket, Key=f"{any_store.prefix}/{stored.key}", Body=data[:1000])
    again = await any_store.put_file(path, "png")
    assert again.created is True
    await any_store.get_to_path(stored.key, tmp_path / "back.png")
    assert (tmp_path / "back.png").read_bytes() == data


async def test_distinct_bytes_distinct_keys(any_store, random_file):
    a, _ = random_file(1000, "a.wav")
    b, _ = random_file(1000, "b.wav")
    stored = [await any_store.put_file(p, "wav") for p in (a, b)]
    assert stored[0].key != stored[1].key
    assert all(re.fullmatch(r"objects/([0-9a-f]{2})/\1[0-9a-f]{62}\.wav", s.key) for s in stored)
    assert await any_store.list_keys("objects/") == sorted(s.key for s in stored)


async def test_get_to_path_round_trips_bytes(any_store, random_file, tmp_path):
    # 11 MiB: three parts on S3 (5 MiB part size), several chunks locally.
    path, data = random_file(11 * 1024 * 1024)
    stored = await any_store.put_file(path, "mp4")
    dest = tmp_path / "out" / "clip.mp4"
    await any_store.get_to_path(stored.key, dest)
    assert dest.read_bytes() == data
    assert sorted(p.name for p in dest.parent.iterdir()) == ["clip.mp4"]  # no partial file left beside it


async def test_get_missing_object_fails_and_leaves_nothing(any_store, tmp_path):
    dest = tmp_path / "out" / "missing.png"
    with pytest.raises(StorageError, match="missing|no such object"):
        await any_store.get_to_path(object_key("ab" * 32, "png"), dest)
    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


async def test_put_bytes_round_trip(any_store, tmp_path):
    stored = await any_store.put_bytes(b"hello, storyboard", "txt")
    await any_store.get_to_path(stored.key, tmp_path / "hello.txt")
    assert (tmp_path / "hello.txt").read_bytes() == b"hello, storyboard"
    assert stored.sha256 == hashlib.sha256(b"hello, storyboard").hexdigest()


async def test_json_read_write_create(any_store):
    key = sidecar_key("cd" * 32)
    assert await any_store.read_json(key) is None
    await any_store.write_json(key, {"type": "image", "width": 640})
    assert await any_store.read_json(key) == {"type": "image", "width": 640}
    await any_store.write_json(key, {"type": "image", "width": 1280})  # write_json overwrites
    assert await any_store.read_json(key) == {"type": "image", "width": 1280}

    assert await any_store.create_json("locks/step-1.json", {"owner": "first"}) is True
    assert await any_store.create_json("locks/step-1.json", {"owner": "second"}) is False
    assert await any_store.read_json("locks/step-1.json") == {"owner": "first"}


async def test_small_documents_as_bytes_round_trip_and_overwrite(any_store):
    key = "prefect-results/" + "ab" * 32  # a Prefect result record, named by its cache key
    assert await any_store.read_bytes(key) is None
    await any_store.write_bytes(key, b'{"metadata": 1}\x00\xff')
    assert await any_store.read_bytes(key) == b'{"metadata": 1}\x00\xff'
    await any_store.write_bytes(key, b"second")
    assert await any_store.read_bytes(key) == b"second"
    assert await any_store.list_keys("prefect-results") == [key]  # nothing left aside


async def test_concurrent_create_json_has_one_winner(any_store):
    key = "journal/concurrent.json"
    results = await asyncio.gather(*(any_store.create_json(key, {"writer": i}) for i in range(8)))
    assert sum(results) == 1
    winner = results.index(True)
    assert await any_store.read_json(key) == {"writer": winner}


async def test_list_keys_by_prefix(any_store):
    for key in ("journal/b.json", "journal/a.json", "results/x.json", "journal-old/c.json"):
        await any_store.write_json(key, {"key": key})
    assert await any_store.list_keys("journal/") == ["journal/a.json", "journal/b.json"]
    assert await any_store.list_keys("results/") == ["results/x.json"]
    assert await any_store.list_keys("nothing-here/") == []
    assert set(await any_store.list_keys("")) == {
        "journal/a.json",
        "journal/b.json",
        "results/x.json",
        "journal-old/c.json",
    }


async def test_exists_and_delete(any_store, random_file):
    path, _ = random_file(2048)
    stored = await any_store.put_file(path, "bin")
    await any_store.write_json("journal/job.json", {"job_id": "j-1"})
    assert await any_store.exists(stored.key) and await any_store.exists("journal/job.json")

    await any_store.delete(stored.key)
    await any_store.delete("journal/job.json")
    await any_store.delete("journal/never-existed.json")  # deleting nothing is not an error
    assert not await any_store.exists(stored.key)
    assert await any_store.read_json("journal/job.json") is None
    assert await any_store.list_keys("") == []
    # Deleted bytes can be stored again, and count as newly created.
    assert (await any_store.put_file(path, "bin")).created is True


async def test_url_and_key_round_trip(any_store, random_file):
    path, _ = random_file(100)
    stored = await any_store.put_file(path, "jpg")
    assert stored.url == any_store.url_for(stored.key)
    assert any_store.key_for(stored.url) == stored.key
    assert stored.url.startswith(any_store.root_url)


def _foreign_urls(store) -> list[str]:
    urls = ["https://example.com/objects/ab/x.png", "ftp://host/x.png", "file:///etc/passwd"]
    if isinstance(store, LocalStore):
        return [*urls, f"s3://bucket/{store.root}/objects/x.png", (store.root.parent / "other" / "x.png").as_uri()]
    return [
        *urls,
        f"s3://other-bucket/{store.prefix}/objects/x.png",
        f"s3://{store.bucket}/elsewhere/objects/x.png",
        f"s3://{store.bucket}/{store.prefix}-sibling/objects/x.png",  # shares the prefix's first characters
        f"s3://{store.bucket}/objects/x.png",
    ]


async def test_foreign_urls_have_no_key(any_store):
    for url in _foreign_urls(any_store):
        assert any_store.key_for(url) is None, url


async def test_keys_may_not_escape_the_store(any_store):
    with pytest.raises(StorageError, match="outside the store"):
        await any_store.write_json("../../escape.json", {"x": 1})
