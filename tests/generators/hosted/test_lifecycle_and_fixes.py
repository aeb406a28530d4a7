"""Issue 12's facts, each failing before: shut-down and deprecated models, ElevenLabs request details, fal 422 cost."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flows.pipeline.flow import plan_pipeline
from flows.pipeline.spec import PipelineSpec
from flows.pipeline.validate import PipelineValidationError
from generators.errors import InputValidationError, ProviderInputError
from tests.fakes.fixtures import hosted


def one_step(generator: str, inputs: dict) -> PipelineSpec:
    return PipelineSpec.model_validate({"name": "one", "steps": {"s": {"generator": generator, "inputs": inputs}}})


async def test_a_shut_down_model_is_refused_before_any_spend_naming_its_replacement(fake, registry, store):
    with pytest.raises(PipelineValidationError) as info:
        await plan_pipeline(one_step("openai/gpt-image-1", {"prompt": "a fox"}), {}, store=store, registry=registry)
    message = str(info.value)
    assert "2026-10-23" in message and "openai/gpt-image-2" in message
    assert fake.request_log == []


async def test_no_active_entry_points_at_a_shut_down_model(registry):
    gone = {g.spec.model for g in map(registry.get, registry.names()) if g.lifecycle.status == "shut_down"}
    for name in registry.names():
        gen = registry.get(name)
        if gen.provider == "openai" and gen.lifecycle.status == "active":
            assert gen.spec.model not in gone, name
        if gen.lifecycle.replacement:  # the replacement is itself in the catalogue, and not going too
            assert registry.get(gen.lifecycle.replacement).lifecycle.status == "active", name
        elif gen.lifecycle.status != "active":
            assert gen.lifecycle.note, name  # no replacement entry: the entry says what to do instead


@pytest.mark.parametrize(
    ("name", "inputs", "day", "instead"),
    [  # OpenAI's text-to-speech guide (developers.openai.com/api/docs/guides/text-to-speech, read 2026-12-04)
        ("openai/tts-1", {"input": "hello"}, "2027-01-06", "gpt-realtime-2.1-mini"),
        ("openai/tts-1-hd", {"input": "hello"}, "2027-01-06", "gpt-realtime-2.1-mini"),
        ("openai/gpt-4o-mini-tts", {"input": "hello"}, "2027-01-06", "gpt-realtime-2.1-mini"),
    ],
)
async def test_a_deprecated_model_plans_with_a_warning_naming_the_day_and_the_replacement(
    fake, registry, store, name, inputs, day, instead
):
    plan = await plan_pipeline(one_step(name, inputs), {}, store=store, registry=registry)
    (warning,) = plan.warnings
    assert day in warning and instead in warning and warning.startswith("s.generator")


@pytest.mark.parametrize("name", ["openai/whisper-1", "openai/gpt-4o-transcribe"])
async def test_whisper_1_and_gpt_4o_transcribe_are_deprecated_for_gpt_transcribe(registry, name):
    """Both go on 2027-02-26; gpt-4o-transcribe was named as whisper-1's replacement before, but it goes too."""
    life = registry.get(name).lifecycle
    assert (life.status, life.date.isoformat(), life.replacement) == ("deprecated", "2027-02-26", None)
    assert "gpt-transcribe" in life.message(name, "openai") and "fal/wizper" in life.message(name, "openai")


async def test_the_gpt_image_2_successor_runs_and_bills_the_reported_tokens(fake, hosted_ctx):
    result = await hosted("openai/gpt-image-2").run(
        {"prompt": "a teapot on a table", "quality": "low", "size": "1024x1024"}, hosted_ctx
    )
    (submission,) = fake.submissions("openai")
    assert submission.model == "gpt-image-2"
    assert result.actual_cost_usd is not None and result.actual_cost_usd > 0


def test_language_code_is_not_offered_for_multilingual_v2_which_refuses_it():
    with pytest.raises(InputValidationError, match="language_code"):
        hosted("elevenlabs/multilingual-v2").parse_inputs({"text": "Hallo", "language_code": "de"})
    assert hosted("elevenlabs/flash-v2.5").parse_inputs({"text": "Hallo", "language_code": "de"})


async def test_voice_settings_are_sent_only_when_given_so_the_voices_own_stay_in_force(fake, hosted_ctx):
    gen = hosted("elevenlabs/multilingual-v2")
    await gen.run({"text": "First line."}, hosted_ctx)
    await gen.run({"text": "Second line.", "voice_settings": {"stability": 0.9}}, hosted_ctx)
    first, second = fake.submissions("elevenlabs")
    assert "voice_settings" not in first.input
    assert second.input["voice_settings"]["stability"] == 0.9


async def test_a_fal_request_its_runner_rejects_422_is_recorded_as_charged(fake, hosted_ctx):
    fake.set(reject_input=True)
    with pytest.raises(ProviderInputError) as info:
        await hosted("fal/flux-dev").run({"prompt": "a barn", "image_size": "square_hd"}, hosted_ctx)
    assert info.value.status_code == 422
    assert info.value.charged_usd == Decimal("0.025")  # one 1024x1024 image, as fal may bill it (fal FAQ)
    assert hosted_ctx.actual_cost_usd == Decimal("0.025")
    assert len(fake.submissions("fal")) == 1
    assert await hosted_ctx.previous_job() is None  # not rejoined: the same input fails the same way


async def test_a_fal_request_that_fails_on_the_server_is_a_job_failure_and_costs_nothing(fake, hosted_ctx):
    from generators.errors import JobFailedError

    fake.set(fail_jobs=True)
    with pytest.raises(JobFailedError, match="the model crashed"):
        await hosted("fal/flux-schnell").run({"prompt": "a barn"}, hosted_ctx)
    assert hosted_ctx.actual_cost_usd is None  # fal never charges server errors (fal FAQ)


async def test_elevenlabs_refuses_text_over_the_models_limit_with_its_documented_status(fake, tmp_path):
    """ElevenLabs answers 400 {"detail": {"status": "max_character_limit_exceeded", "message": …}} (its help centre,
    "API - Error Code 400 or 401", read 2026-12-04); the fake answered a status name of its own."""
    from generators.providers.elevenlabs import ElevenLabsClient

    async with ElevenLabsClient() as eleven:
        with pytest.raises(ProviderInputError) as info:
            await eleven.text_to_speech(
                "voice",
                {"text": "a" * 10_001, "model_id": "eleven_multilingual_v2"},
                output_format="mp3_44100_128",
                dest=tmp_path / "out.mp3",
            )
    assert info.value.status_code == 400
    assert "(HTTP 400): max_character_limit_exceeded: This request's text has 10001 characters" in str(info.value)
    assert fake.submissions() == []
