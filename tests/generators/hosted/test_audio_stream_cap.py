"""Streamed provider audio stops at the download cap, with a clear error and nothing kept (issue 14, finding 5)."""

from __future__ import annotations

import httpx
import pytest

from generators.context import GeneratorContext
from generators.errors import ProviderError
from generators.fetch import FetchPolicy
from tests.fakes.fixtures import hosted

CAP = 1024 * 1024
SENT = 64 * 1024 * 1024  # what the fake would stream if nobody stopped reading

CALLS = [
    ("openai/tts-1", {"input": "A line that should be four seconds long.", "voice": "sage"}),
    ("elevenlabs/multilingual-v2", {"text": "Welcome back to the studio."}),
    ("elevenlabs/sound-effects", {"text": "a door creaks", "duration_seconds": 2.5}),
]


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize(("name", "inputs"), CALLS, ids=[c[0] for c in CALLS])
async def test_an_audio_answer_past_the_cap_is_cut_off_and_nothing_is_kept(fake, store, name, inputs):
    fake.set(audio_bytes=SENT)
    fake.stream_cut.clear()
    policy = FetchPolicy.from_settings()
    capped = FetchPolicy(allowed_hosts=policy.allowed_hosts, max_bytes=CAP, timeout=httpx.Timeout(10.0))
    async with GeneratorContext(store, fetch_policy=capped) as ctx:
        scratch = ctx.temp_path().parent
        with pytest.raises(ProviderError, match="larger than the cap of 1 MiB") as info:
            await hosted(name).run(inputs, ctx)
        written = sum(p.stat().st_size for p in scratch.rglob("*") if p.is_file())
        assert written == 0, f"{written} bytes of a {CAP}-byte cap were left in scratch"
    assert "BOARDFLOW_MAX_DOWNLOAD_MB" in info.value.hint
    assert _files(store.root / "objects") == []
    assert fake.stream_cut.wait(10), "the client kept reading the endless answer"
    assert fake.streamed < SENT // 4, f"the fake sent {fake.streamed} bytes past a {CAP}-byte cap"


async def test_lost_speech_downloaded_from_the_history_stops_at_the_cap_too(fake, store):
    fake.set(drop_after_submit=1)
    inputs = {"text": "Welcome back to the studio."}
    async with GeneratorContext(store, cache_key="lost-capped") as ctx:
        with pytest.raises(ProviderError, match="lost its connection"):
            await hosted("elevenlabs/multilingual-v2").run(inputs, ctx)
    fake.set(audio_bytes=SENT)
    fake.stream_cut.clear()
    policy = FetchPolicy.from_settings()
    capped = FetchPolicy(allowed_hosts=policy.allowed_hosts, max_bytes=CAP, timeout=httpx.Timeout(10.0))
    async with GeneratorContext(store, cache_key="lost-capped", fetch_policy=capped) as ctx:
        with pytest.raises(ProviderError, match="larger than the cap of 1 MiB"):
            await hosted("elevenlabs/multilingual-v2").run(inputs, ctx)
    assert fake.requests_to("/elevenlabs/v1/history/", "GET") == 1 and len(fake.submissions("elevenlabs")) == 1
    assert fake.stream_cut.wait(10), "the client kept reading the endless history audio"
    assert fake.streamed < SENT // 4, f"the fake sent {fake.streamed} bytes past a {CAP}-byte cap"
