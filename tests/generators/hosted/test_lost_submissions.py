"""One bill per result when a submit answer is lost: the fake provider takes (and bills) the job, then cuts the
connection unanswered. Replicate's list of predictions and ElevenLabs' history of speech find it; where a provider
offers no way to find it (ElevenLabs' history lists no sound effects), the resubmission is counted as a possible
duplicate charge."""

from __future__ import annotations

import pytest

from generators.context import GeneratorContext
from generators.errors import RateLimitError, TransientProviderError
from tests.fakes import elevenlabs_routes
from tests.fakes.fixtures import hosted, run_losing_the_download

VOICE = "JBFqnCBsd6RMkjVDRZzb"  # the catalogue's default voice
CASES = [
    ("replicate/flux-schnell", {"prompt": "a harbour at night", "megapixels": "0.25"}, "replicate", 0),
    ("fal/flux-schnell", {"prompt": "a harbour at night"}, "fal", 1),
    ("openai/gpt-image-2", {"prompt": "a harbour at night", "quality": "low", "size": "1024x1024"}, "openai", 1),
    ("elevenlabs/flash-v2.5", {"text": "A harbour at night."}, "elevenlabs", 0),
    ("elevenlabs/sound-effects", {"text": "Waves on a harbour wall."}, "elevenlabs", 1),
    ("kie/suno-v5", {"prompt": "a sea shanty about a harbour"}, "kie", 1),  # Kie documents no task listing
]


async def run_twice(store, name: str, inputs: dict, key: str):
    """The first attempt loses its submit answer; the second (a retry: same step, same cache key) finishes."""
    gen = hosted(name)
    async with GeneratorContext(store, cache_key=key) as ctx:
        with pytest.raises(TransientProviderError, match="lost its connection"):
            await gen.run(inputs, ctx)
    async with GeneratorContext(store, cache_key=key) as ctx:
        return await gen.run(inputs, ctx)


@pytest.mark.parametrize(("name", "inputs", "provider", "possible_duplicates"), CASES)
async def test_a_lost_submit_answer_is_found_or_counted(fake, store, name, inputs, provider, possible_duplicates):
    fake.set(drop_after_submit=1)
    result = await run_twice(store, name, inputs, f"lost-{provider}")
    submissions = fake.submissions(provider)
    assert len(submissions) == 1 + possible_duplicates
    assert result.possible_duplicate_charges == possible_duplicates
    if provider == "replicate":  # found in the list of predictions: the job the dropped answer named
        assert result.external_job_ids == [submissions[0].job_id]
    assert result.artifacts()
    assert await store.read_json(f"journal/lost-{provider}.json") is None


async def test_lost_speech_is_downloaded_from_the_history_and_billed_once(fake, store):
    """Found in the history: its audio comes from the history item, nothing is submitted again, and the credits
    recorded are the ones the history says the generation used."""
    fake.set(drop_after_submit=1)
    result = await run_twice(store, "elevenlabs/flash-v2.5", {"text": "A harbour at night."}, "found-speech")
    assert len(fake.submissions("elevenlabs")) == 1 and result.possible_duplicate_charges == 0
    assert fake.requests_to("/elevenlabs/v1/history/", "GET") == 1  # the audio of the one history item
    (audio,) = result.artifacts()
    assert audio.format == "mp3" and audio.size_bytes > 0
    async with GeneratorContext(store, cache_key="answered-speech") as ctx:  # the same request, answered
        answered = await hosted("elevenlabs/flash-v2.5").run({"text": "A harbour at night."}, ctx)
    assert result.actual_cost_usd is not None and result.actual_cost_usd == answered.actual_cost_usd


async def test_speech_the_history_does_not_list_is_submitted_again_and_counted(fake, store):
    """A generation can be billed and yet not listed (zero-retention requests keep no history), so an empty
    history proves nothing: the resubmission is counted as a possible duplicate."""
    fake.set(drop_after_submit=1, elevenlabs_history=False)
    result = await run_twice(store, "elevenlabs/flash-v2.5", {"text": "A harbour at night."}, "unlisted")
    assert len(fake.submissions("elevenlabs")) == 2 and result.possible_duplicate_charges == 1
    assert fake.requests_to("/elevenlabs/v1/history", "GET") == 1


async def test_the_elevenlabs_history_is_paged_past_newer_generations(fake, store):
    gen = hosted("elevenlabs/flash-v2.5")
    fake.set(drop_after_submit=1)
    async with GeneratorContext(store, cache_key="paged-speech") as ctx:
        with pytest.raises(TransientProviderError, match="lost its connection"):
            await gen.run({"text": "mine"}, ctx)
    for i in range(130):  # the account's later generations, same voice and model: more than a page before it
        elevenlabs_routes.generated(fake, VOICE, "eleven_flash_v2_5", f"other {i}")
    async with GeneratorContext(store, cache_key="paged-speech") as ctx:
        result = await gen.run({"text": "mine"}, ctx)
    mine = [s for s in fake.submissions("elevenlabs") if s.input.get("text") == "mine"]
    assert len(mine) == 1 and result.possible_duplicate_charges == 0
    assert fake.requests_to("/elevenlabs/v1/history", "GET") >= 3  # two listing pages, then the audio


async def test_a_replicate_listing_of_many_pages_is_searched_back_to_the_intent(fake, store):
    for i in range(130):  # other predictions of the account, older than the lost one: more than a page
        fake.new_job("replicate", "black-forest-labs/flux-schnell", {"prompt": f"other {i}"})
    fake.set(drop_after_submit=1)
    result = await run_twice(store, "replicate/flux-schnell", {"prompt": "mine", "megapixels": "0.25"}, "paged")
    mine = [s for s in fake.submissions("replicate") if s.input.get("prompt") == "mine"]
    assert len(mine) == 1 and result.external_job_ids == [mine[0].job_id]


async def test_an_answered_refusal_bills_nothing_and_counts_no_duplicate(fake, store):
    fake.fail_next("fal", 429, retry_after=0)
    gen = hosted("fal/flux-schnell")
    async with GeneratorContext(store, cache_key="refused") as ctx:
        with pytest.raises(RateLimitError):
            await gen.run({"prompt": "x"}, ctx)
        assert await ctx.previous_job() is None, "a refused submission left its intent behind"
    async with GeneratorContext(store, cache_key="refused") as ctx:
        result = await gen.run({"prompt": "x"}, ctx)
    assert len(fake.submissions("fal")) == 1 and result.possible_duplicate_charges == 0


async def test_a_possible_duplicate_is_still_reported_when_a_later_attempt_finishes_the_job(fake, store):
    """The attempt that resubmits is refused once (billing nothing), the next resubmits and then loses its
    download; the attempt that rejoins that job and finishes it still reports the one possible duplicate."""
    fake.set(drop_after_submit=1)
    gen = hosted("fal/flux-schnell")
    async with GeneratorContext(store, cache_key="late") as ctx:
        with pytest.raises(TransientProviderError, match="lost its connection"):
            await gen.run({"prompt": "x"}, ctx)
    fake.fail_next("fal", 429, retry_after=0)
    async with GeneratorContext(store, cache_key="late") as ctx:
        with pytest.raises(RateLimitError):
            await gen.run({"prompt": "x"}, ctx)
    await run_losing_the_download(fake, store, gen, {"prompt": "x"}, "late")
    async with GeneratorContext(store, cache_key="late") as ctx:
        result = await gen.run({"prompt": "x"}, ctx)
    assert len(fake.submissions("fal")) == 2 and result.possible_duplicate_charges == 1
