"""The media server answers store objects by sha256 only: whole or by range, typed, named, redirected for S3."""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import tracemalloc

import httpx
import pytest

from deployments.media_server import MediaServer, announce
from generators.storage import LocalStore, sidecar_key
from generators.storage.s3 import S3Store


async def put(store, data: bytes, ext: str, step: str | None = "final") -> str:
    stored = await store.put_bytes(data, ext)
    if step:
        await store.write_json(sidecar_key(stored.sha256), {"made_by": [{"step": "earlier"}, {"step": step}]})
    return stored.sha256


@pytest.fixture
def local_store(tmp_path):
    return LocalStore(tmp_path / "store")


@pytest.fixture
def media(local_store):
    with MediaServer(local_store) as server:
        yield server


def raw(server: MediaServer, method: str, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    """A request whose path goes out exactly as written (httpx would tidy `..` away before sending)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


async def test_an_object_comes_whole_with_its_type_length_and_a_readable_name(media, local_store):
    data = os.urandom(10_000)
    sha = await put(local_store, data, "mp4")
    response = httpx.get(f"{media.url}/objects/{sha}")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-length"] == "10000"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-disposition"] == f'inline; filename="final-{sha[:12]}.mp4"'
    assert response.headers["etag"] == f'"{sha}"'
    download = httpx.get(f"{media.url}/objects/{sha}?download=1")
    assert download.headers["content-disposition"] == f'attachment; filename="final-{sha[:12]}.mp4"'


@pytest.mark.parametrize(
    ("ext", "expected"),
    [
        ("mp4", "video/mp4"),
        ("webm", "video/webm"),
        ("wav", "audio/wav"),
        ("mp3", "audio/mpeg"),
        ("flac", "audio/flac"),
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("webp", "image/webp"),
        ("txt", "text/plain; charset=utf-8"),
        ("safetensors", "application/octet-stream"),
        ("html", "application/octet-stream"),  # never a page the browser would run
        ("svg", "application/octet-stream"),
    ],
)
async def test_the_content_type_follows_the_objects_format(media, local_store, ext, expected):
    sha = await put(local_store, os.urandom(64), ext, step=None)
    response = httpx.get(f"{media.url}/objects/{sha}")
    assert response.headers["content-type"] == expected
    assert response.headers["content-disposition"] == f'inline; filename="{sha[:12]}.{ext}"'  # no sidecar: the hash
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, 9999), ("bytes=-50", 9950, 9999), ("bytes=9990-20000", 9990, 9999)],
)
async def test_a_range_comes_as_206_with_its_content_range(media, local_store, header, first, last):
    data = os.urandom(10_000)
    sha = await put(local_store, data, "mp4")
    response = httpx.get(f"{media.url}/objects/{sha}", headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/10000"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.content == data[first : last + 1]


async def test_a_range_past_the_end_is_416_and_a_list_of_ranges_gets_the_whole_object(media, local_store):
    data = os.urandom(1000)
    sha = await put(local_store, data, "wav")
    past = httpx.get(f"{media.url}/objects/{sha}", headers={"Range": "bytes=1000-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == "bytes */1000"
    assert httpx.get(f"{media.url}/objects/{sha}", headers={"Range": "bytes=-0"}).status_code == 416
    several = httpx.get(f"{media.url}/objects/{sha}", headers={"Range": "bytes=0-1,5-9"})
    assert several.status_code == 200 and several.content == data
    garbled = httpx.get(f"{media.url}/objects/{sha}", headers={"Range": "bytes=abc"})
    assert garbled.status_code == 200 and garbled.content == data


async def test_head_says_what_get_would_send_without_the_bytes(media, local_store):
    sha = await put(local_store, os.urandom(5000), "png")
    whole = raw(media, "HEAD", f"/objects/{sha}")
    assert whole.status == 200 and whole.body == b""  # type: ignore[attr-defined]
    assert whole.getheader("Content-Length") == "5000" and whole.getheader("Content-Type") == "image/png"
    part = raw(media, "HEAD", f"/objects/{sha}", {"Range": "bytes=10-19"})
    assert part.status == 206 and part.getheader("Content-Range") == "bytes 10-19/5000"


async def test_unknown_objects_and_every_other_path_are_404(media, local_store, tmp_path):
    sha = await put(local_store, os.urandom(100), "mp4")
    (tmp_path / "secret.txt").write_text("not yours")
    paths = [
        f"/objects/{'0' * 64}",  # a hash the store does not hold
        f"/objects/{sha}.json",  # its sidecar
        f"/objects/{sha[:2]}/{sha}.mp4",  # the store's own layout
        f"/objects/{sha.upper()}",
        "/objects/../../secret.txt",
        "/objects/%2e%2e/%2e%2e/secret.txt",
        "/../secret.txt",
        "//etc/passwd",
        "/",
        "/objects/",
    ]
    for path in paths:
        response = raw(media, "GET", path)
        assert response.status == 404, path
        assert b"not yours" not in response.body  # type: ignore[attr-defined]


async def test_a_request_naming_another_host_is_refused(media, local_store):
    """A page whose own name was pointed at 127.0.0.1 (DNS rebinding) cannot read the store through it."""
    sha = await put(local_store, os.urandom(100), "mp4")
    assert raw(media, "GET", f"/objects/{sha}", {"Host": f"evil.example:{media.port}"}).status == 403
    for name in (f"localhost:{media.port}", f"127.0.0.1:{media.port}", "localhost"):
        assert raw(media, "GET", f"/objects/{sha}", {"Host": name}).status == 200, name


async def test_writes_are_refused(media, local_store):
    sha = await put(local_store, os.urandom(100), "mp4")
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        response = raw(media, method, f"/objects/{sha}")
        assert response.status == 405, method
        assert response.getheader("Allow") == "GET, HEAD"
    assert httpx.get(f"{media.url}/objects/{sha}").status_code == 200  # still there


async def test_a_large_file_is_streamed_not_loaded(media, local_store):
    """A 512 MiB object goes out whole while the process allocates almost nothing (sendfile, in the kernel)."""
    size = 512 * 1024 * 1024
    sha = hashlib.sha256(b"stand-in").hexdigest()  # the server serves what the store holds; it does not re-hash
    path = local_store.root / "objects" / sha[:2] / f"{sha}.mp4"
    path.parent.mkdir(parents=True)
    with path.open("wb") as fh:
        fh.truncate(size)  # sparse: no disk needed
    received = 0
    tracemalloc.start()
    try:
        conn = http.client.HTTPConnection(media.host, media.port, timeout=60)
        conn.request("GET", f"/objects/{sha}")
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Length") == str(size)
        buf = bytearray(1 << 20)
        while n := response.readinto(buf):
            received += n
        conn.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert peak < 16 * 1024 * 1024, f"serving {size >> 20} MiB peaked at {peak >> 20} MiB of Python memory"


async def test_many_range_requests_at_once_are_all_answered(media, local_store):
    data = os.urandom(200_000)
    sha = await put(local_store, data, "mp4")
    errors: list[str] = []

    def fetch(i: int) -> None:
        start = i * 1000
        r = httpx.get(f"{media.url}/objects/{sha}", headers={"Range": f"bytes={start}-{start + 999}"})
        if r.status_code != 206 or r.content != data[start : start + 1000]:
            errors.append(f"{i}: {r.status_code}")

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_taken_port_is_a_clear_error(local_store, media):
    from generators.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=f"cannot listen on 127.0.0.1:{media.port}") as caught:
        MediaServer(local_store, port=media.port).start()
    assert "--media-port" in caught.value.hint


@pytest.fixture
def s3_media(s3_endpoint, s3_bucket):
    store = S3Store(s3_bucket, prefix="team", endpoint_url=s3_endpoint)
    with MediaServer(store) as server:
        yield store, server


async def test_an_s3_object_is_a_redirect_to_a_presigned_url(s3_media, s3_endpoint):
    store, media = s3_media
    data = os.urandom(50_000)
    sha = await put(store, data, "mp4")
    response = httpx.get(f"{media.url}/objects/{sha}")
    assert response.status_code == 307
    location = response.headers["location"]
    assert location.startswith(f"{s3_endpoint}/{store.bucket}/team/objects/{sha[:2]}/{sha}.mp4?")
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=3600" in location
    followed = httpx.get(f"{media.url}/objects/{sha}", follow_redirects=True, headers={"Range": "bytes=0-9"})
    assert followed.status_code == 206 and followed.content == data[:10]
    whole = httpx.get(f"{media.url}/objects/{sha}?download=1", follow_redirects=True)
    assert whole.content == data
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["content-disposition"] == f'attachment; filename="final-{sha[:12]}.mp4"'
    head = httpx.head(f"{media.url}/objects/{sha}", follow_redirects=True)  # a HEAD is signed as a HEAD
    assert head.status_code == 200 and head.headers["content-length"] == "50000"


async def test_an_unknown_s3_object_is_404(s3_media):
    _, media = s3_media
    assert httpx.get(f"{media.url}/objects/{'a' * 64}").status_code == 404


async def test_announce_sets_points_and_withdraws_the_variable_runs_read(prefect_api):
    from flows.reporting.media import MediaLinks

    announce(prefect_api, "http://127.0.0.1:4210")
    assert await MediaLinks.announced() == MediaLinks("http://127.0.0.1:4210")
    announce(prefect_api, "http://127.0.0.1:5210")  # a later start on another port
    assert await MediaLinks.announced() == MediaLinks("http://127.0.0.1:5210")
    announce(prefect_api, None)
    assert await MediaLinks.announced() == MediaLinks()
