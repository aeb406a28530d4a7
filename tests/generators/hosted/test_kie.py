"""Kie, the fifth provider (Suno music), against the fake: the request Kie's reference asks for (callBackUrl
included, since Kie enforces it), refusals carried in the body's `code`, failed tasks, and one bill per result
when the download is lost and the step is retried (the task id is journaled)."""

from __future__ import annotations

import pytest

from generators.context import GeneratorContext
from generators.errors import InsufficientCreditError, JobFailedError, ProviderAuthError, ProviderInputError
from generators.providers.kie import INERT_CALLBACK, KieClient
from tests.fakes.fixtures import hosted, run_losing_the_download

SONG = {"prompt": "a sea shanty about a harbour"}


async def test_a_song_is_made_from_the_first_of_the_tasks_tracks_with_an_inert_callback(fake, hosted_ctx):
    result = await hosted("kie/suno-v5").run(SONG, hosted_ctx)
    (sub,) = fake.submissions("kie")
    assert sub.model == "V5" and sub.input["callBackUrl"] == INERT_CALLBACK
    assert sub.input["customMode"] is False and sub.input["instrumental"] is False
    first = fake.jobs[sub.job_id].output[0]["audioUrl"]
    assert (await hosted_ctx.resolve_artifact(result.primary)).read_bytes() == fake.file_bytes(first)
    assert result.primary.artifact_type == "audio" and result.primary.duration == pytest.approx(2.0, abs=0.1)


async def test_kie_callback_url_sends_the_users_receiver(fake, hosted_ctx, monkeypatch):
    monkeypatch.setenv("KIE_CALLBACK_URL", "https://hooks.example.com/kie")
    await hosted("kie/suno-v5").run(SONG, hosted_ctx)
    assert fake.submissions("kie")[0].input["callBackUrl"] == "https://hooks.example.com/kie"


async def test_the_fake_refuses_a_task_without_callback_as_kie_does(fake):
    async with KieClient() as kie:
        with pytest.raises(ProviderInputError, match="callBackUrl") as info:
            await kie.call(
                "POST",
                "api/v1/generate",
                json={"customMode": False, "instrumental": False, "model": "V5", "prompt": "x"},
            )
    assert info.value.status_code == 422 and fake.submissions() == []


async def test_custom_mode_needs_style_and_title_at_boardflow_and_at_the_fake(fake):
    gen = hosted("kie/suno-v5")
    with pytest.raises(Exception, match="style and a title"):
        gen.parse_inputs({**SONG, "customMode": True})
    async with KieClient() as kie:
        with pytest.raises(ProviderInputError, match="style"):
            await kie.generate_music({**SONG, "customMode": True, "instrumental": True, "model": "V5"})


async def test_a_refusal_in_the_body_code_is_the_error_of_that_status(fake):
    fake.set(exhausted_credit=True)
    async with KieClient() as kie:
        with pytest.raises(InsufficientCreditError, match="Insufficient credits"):
            await kie.generate_music({**SONG, "customMode": False, "instrumental": False, "model": "V5"})
    fake.set(exhausted_credit=False)
    async with KieClient(api_key="kie-wrong-key-000000") as kie:
        with pytest.raises(ProviderAuthError) as info:
            await kie.music_record("nope")
    assert "KIE_API_KEY" in info.value.hint


async def test_a_failed_task_fails_the_step_and_clears_the_journal(fake, store):
    fake.set(fail_jobs=True)
    async with GeneratorContext(store, cache_key="kie-failed") as ctx:
        with pytest.raises(JobFailedError, match="GENERATE_AUDIO_FAILED"):
            await hosted("kie/suno-v5").run(SONG, ctx)
    assert await store.read_json("journal/kie-failed.json") is None


async def test_a_lost_download_is_collected_on_retry_without_a_second_task(fake, store):
    gen = hosted("kie/suno-v5")
    await run_losing_the_download(fake, store, gen, SONG, "kie-retry")
    async with GeneratorContext(store, cache_key="kie-retry") as ctx:
        result = await gen.run(SONG, ctx)
    assert len(fake.submissions("kie")) == 1 and result.possible_duplicate_charges == 0
