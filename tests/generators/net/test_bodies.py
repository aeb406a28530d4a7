"""Compressed bodies under the download cap: decoded bytes count, memory stays bounded (issue 14, finding 1)."""

from __future__ import annotations

import gzip
import hashlib
import tempfile
import zlib
from pathlib import Path

import httpx
import pytest

from generators.errors import UnsafeURLError
from generators.fetch import FetchPolicy, download
from tests.fakes.loopback import RawServer, answer, gzip_of_zeros, traced_peak

CAP = 1024 * 1024
EXPANDED = 128 * 1024 * 1024  # what each bomb inflates to: 128 times the cap
SLACK = 4 * 1024 * 1024  # a fixed buffer above the cap, whatever the cap is


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    once = gzip_of_zeros(EXPANDED)
    return {"gzip": once, "gzip, gzip": gzip.compress(once, 9), "deflate": zlib.compress(bytes(EXPANDED), 9)}


@pytest.fixture(scope="module")
async def server():
    with RawServer() as srv:
        # One download first, so one-time costs (the TLS context, imports) are not counted against a bomb.
        url = srv.route("/warm-up", answer(b"warm"))
        await download(url, Path(tempfile.mkdtemp()) / "warm", _policy(srv))
        yield srv


def _policy(server: RawServer, cap: int = CAP) -> FetchPolicy:
    return FetchPolicy(allowed_hosts=frozenset({server.netloc}), max_bytes=cap, timeout=httpx.Timeout(10.0))


@pytest.mark.parametrize("encoding", ["gzip", "gzip, gzip", "deflate"])
async def test_a_compression_bomb_is_refused_within_the_cap_plus_a_fixed_buffer(server, bombs, tmp_path, encoding):
    url = server.route(f"/bomb-{encoding.replace(', ', '-')}", answer(bombs[encoding], {"Content-Encoding": encoding}))
    peak, raised = await traced_peak(download(url, tmp_path / "bomb.bin", _policy(server)))
    assert isinstance(raised, UnsafeURLError), f"expected a refusal, got {raised!r}"
    assert peak < CAP + SLACK, f"peak {peak / 2**20:.1f} MiB for a {len(bombs[encoding])}-byte {encoding} body"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


async def test_downloads_ask_for_unencoded_bytes(server, tmp_path):
    url = server.route("/plain", answer(b"plain bytes"))
    await download(url, tmp_path / "plain.bin", _policy(server))
    assert server.requests_to("/plain")[-1].headers["accept-encoding"] == "identity"


async def test_one_gzip_layer_within_the_cap_is_decoded_and_hashed_as_decoded(server, tmp_path):
    data = bytes(range(256)) * 4096  # 1 MiB exactly: the cap itself is allowed
    url = server.route("/one-layer", answer(gzip.compress(data), {"Content-Encoding": "gzip"}))
    sha, size = await download(url, tmp_path / "one.bin", _policy(server))
    assert (tmp_path / "one.bin").read_bytes() == data
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))


async def test_an_unasked_for_encoding_is_refused_naming_it(server, tmp_path):
    url = server.route("/br", answer(b"\x0b\x02\x80hello\x03", {"Content-Encoding": "br"}))
    with pytest.raises(UnsafeURLError, match="br"):
        await download(url, tmp_path / "br.bin", _policy(server))
    assert not (tmp_path / "br.bin").exists()
