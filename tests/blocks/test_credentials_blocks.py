"""A key saved in a credentials block reaches the provider; env var first, block by name; keys never leak."""

from __future__ import annotations

import logging
import uuid

import pytest

from blocks import FalCredentials, ReplicateCredentials
from generators.context import GeneratorContext
from generators.credentials import redact
from generators.errors import ConfigurationError, ProviderAuthError
from tests.fakes.fixtures import hosted


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_a_saved_block_makes_a_hosted_generator_available_and_its_key_is_the_one_sent(
    prefect_api, fake, monkeypatch, store
):
    key = unique("fal-block-key")
    fake.set(keys={**fake.knobs.keys, "fal": key})  # the fake now answers 401 to any other key
    monkeypatch.delenv("FAL_KEY")
    gen = hosted("fal/flux-dev")
    assert not gen.availability().ok

    name = unique("studio-fal")
    await FalCredentials(api_key=key).asave(name)
    monkeypatch.setenv("FAL_KEY_BLOCK", name)
    assert gen.availability().ok

    async with GeneratorContext(store, run_id="block-run", cache_key=unique("step")) as ctx:
        result = await gen.run({"prompt": "a kite over hills", "image_size": "square"}, ctx)
    (image,) = result.artifacts()
    assert (image.width, image.height) == (512, 512)
    assert len(fake.submissions("fal", "fal-ai/flux/dev")) == 1


async def test_a_wrong_key_from_a_block_is_refused_without_showing_the_key(
    prefect_api, fake, monkeypatch, store, caplog
):
    wrong = unique("r8_wrong_block_token")
    monkeypatch.delenv("REPLICATE_API_TOKEN")
    name = unique("studio-replicate")
    await ReplicateCredentials(api_key=wrong).asave(name)
    monkeypatch.setenv("REPLICATE_API_TOKEN_BLOCK", name)

    caplog.set_level(logging.DEBUG)
    async with GeneratorContext(store, run_id="block-run", cache_key=unique("step")) as ctx:
        with pytest.raises(ProviderAuthError) as caught:
            await hosted("replicate/flux-schnell").run({"prompt": "a red kite"}, ctx)
    exc = caught.value
    assert exc.status_code == 401
    assert "REPLICATE_API_TOKEN_BLOCK" in exc.hint  # says where the key came from, not what it is
    for text in (str(exc), exc.body or "", repr(exc.args), caplog.text):
        assert wrong not in text
    assert "[redacted]" in (exc.body or "")  # the fake echoed the key back; it was masked
    assert redact(f"token {wrong}") == "token [redacted]"


async def test_a_block_name_that_does_not_exist_says_how_to_save_one(prefect_api, fake, monkeypatch, store):
    monkeypatch.delenv("FAL_KEY")
    monkeypatch.setenv("FAL_KEY_BLOCK", "no-such-block")
    async with GeneratorContext(store, run_id="block-run", cache_key=unique("step")) as ctx:
        with pytest.raises(ConfigurationError) as caught:
            await hosted("fal/flux-dev").run({"prompt": "a kite"}, ctx)
    assert "no fal-credentials block of that name" in str(caught.value)
    assert "FalCredentials(api_key=...).save('no-such-block')" in caught.value.hint


async def test_a_pipeline_naming_a_missing_block_is_refused_before_any_spend(prefect_api, fake, monkeypatch):
    from flows.pipeline.spec import PipelineSpec
    from flows.pipeline.validate import PipelineValidationError, validate
    from generators.registry import get_registry

    monkeypatch.delenv("FAL_KEY")
    monkeypatch.setenv("FAL_KEY_BLOCK", unique("typo-fal"))
    spec = PipelineSpec.parse(
        {"name": "one-still", "steps": {"still": {"generator": "fal/flux-dev", "inputs": {"prompt": "a kite"}}}}
    )
    with pytest.raises(PipelineValidationError) as caught:
        validate(spec, get_registry())
    assert "no fal-credentials block of that name" in str(caught.value) and "still" in str(caught.value)
    assert fake.submissions("fal") == []


async def test_the_env_var_is_used_when_no_block_is_named(prefect_api, fake, store):
    async with GeneratorContext(store, run_id="block-run", cache_key=unique("step")) as ctx:
        await hosted("fal/flux-dev").run({"prompt": "a kite", "image_size": "square"}, ctx)
    assert len(fake.submissions("fal")) == 1
