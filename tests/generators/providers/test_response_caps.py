"""Provider API answers are read under the cap too: a compressed bomb in JSON or an error body stays small."""

from __future__ import annotations

import pytest

from generators.errors import ProviderError
from generators.providers.openai import OpenAIClient
from tests.fakes.loopback import RawServer, answer, gzip_of_zeros, traced_peak

CAP_MB = 1
SLACK = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_of_zeros(128 * 1024 * 1024)


@pytest.fixture
async def openai(monkeypatch):
    monkeypatch.setenv("BOARDFLOW_MAX_DOWNLOAD_MB", str(CAP_MB))
    with RawServer() as srv:
        srv.route("/v1/warm-up", answer(b"{}"))
        async with OpenAIClient("sk-test-caps-123456", base_url=f"{srv.base}/v1") as client:
            await client.request("POST", client.url("warm-up"))  # one-time costs are not the bomb's
            yield srv, client


@pytest.mark.parametrize("status", [200, 500])
async def test_a_compressed_bomb_in_an_api_answer_is_refused_in_bounded_memory(openai, bomb, status):
    srv, client = openai
    srv.route("/v1/images/generations", answer(bomb, {"Content-Encoding": "gzip"}, status=status))
    peak, raised = await traced_peak(client.generate_images({"model": "gpt-image-2", "prompt": "x"}))
    assert isinstance(raised, ProviderError) and "larger than" in str(raised), repr(raised)
    assert peak < CAP_MB * 2**20 + SLACK, f"peak {peak / 2**20:.1f} MiB for a {len(bomb)}-byte answer"


async def test_api_answers_ask_only_for_encodings_the_bounded_reader_decodes(openai):
    srv, client = openai
    assert srv.requests_to("/v1/warm-up")[-1].headers["accept-encoding"] == "gzip, deflate"
