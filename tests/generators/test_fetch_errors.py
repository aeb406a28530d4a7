"""What a broken server or URL turns into: one of boardflow's errors with a hint, short (issue 14, finding 8)."""

from __future__ import annotations

import httpx
import pytest

from generators.context import GeneratorContext
from generators.errors import MAX_MESSAGE, BoardflowError, TransientProviderError, UnsafeURLError
from generators.fetch import FetchPolicy
from tests.fakes.loopback import RawServer, head

SHORT = 2000  # a refused URL is named in a line, not pasted whole


@pytest.fixture(scope="module")
def server():
    with RawServer() as srv:
        yield srv


@pytest.fixture
async def ctx(store, server):
    policy = FetchPolicy(allowed_hosts=frozenset({server.netloc}), timeout=httpx.Timeout(5.0))
    async with GeneratorContext(store, fetch_policy=policy) as context:
        yield context


def _raw(data: bytes):
    return lambda out: out.write(data)


BROKEN = [
    ("/not-http", _raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")),
    ("/short-body", _raw(head(200, {"Content-Length": "1000"}) + b"only this")),
    ("/bad-header", _raw(b"HTTP/1.1 200 OK\r\nContent-Length 5\r\n\r\nhello")),
]


@pytest.mark.parametrize(("path", "writer"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_a_server_that_breaks_http_is_a_retryable_boardflow_error(ctx, server, path, writer):
    url = server.route(path, writer)
    with pytest.raises(TransientProviderError, match="broke the HTTP protocol") as info:
        await ctx.store_image_result(url)
    assert info.value.hint and info.value.retryable


@pytest.mark.parametrize("suffix", ["/a\x00b", "/" + "a" * 70_000])
async def test_a_url_httpx_cannot_parse_is_refused_as_unsafe_with_a_short_message(ctx, server, suffix):
    with pytest.raises(UnsafeURLError, match="not a valid URL") as info:
        await ctx.store_image_result(server.base + suffix)
    assert info.value.hint and len(str(info.value)) < SHORT


async def test_a_refused_ten_megabyte_data_uri_gives_a_short_message(ctx):
    uri = "data:image/png;base64," + "A" * 10_000_000
    for attempt in (ctx.store_image_result, lambda u: ctx.store_artifact("image", u)):
        with pytest.raises(BoardflowError) as info:
            await attempt(uri)
        assert len(str(info.value)) < SHORT and "10000022 characters" in str(info.value)


async def test_every_boardflow_error_message_is_capped():
    huge = BoardflowError("x" * 1_000_000, hint="y" * 1_000_000)
    assert len(str(huge)) < 1.5 * MAX_MESSAGE
    assert huge.message.startswith("xxx") and huge.message.endswith("more characters cut]")
    assert huge.hint is not None and huge.hint.startswith("yyy") and huge.hint.endswith("more characters cut]")
