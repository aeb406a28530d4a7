"""The hosted catalog: coverage of step kinds and providers, stable ids, credentials, prices with sources."""

from __future__ import annotations

import datetime as dt
import typing
from pathlib import Path

import pytest

from generators.artifacts import Artifact
from generators.errors import MissingCredentialError
from generators.hosted import HOSTED_GENERATORS
from tests.fakes.fixtures import hosted

KEY_VARS = ("FAL_KEY", "REPLICATE_API_TOKEN", "OPENAI_API_KEY", "ELEVENLABS_API_KEY", "KIE_API_KEY")


def input_kinds(gen) -> frozenset[str]:
    """The artifact kinds a generator's inputs take (single, optional or list fields)."""
    found: set[str] = set()

    def walk(annotation) -> None:
        if isinstance(annotation, type) and issubclass(annotation, Artifact):
            found.add(annotation.artifact_type)
        for arg in typing.get_args(annotation):
            walk(arg)

    for field in gen.get_input_schema().model_fields.values():
        walk(field.annotation)
    return frozenset(found)


def test_at_least_sixty_generators_across_the_five_providers_with_stable_ids():
    names = [g.name for g in HOSTED_GENERATORS]
    assert len(names) >= 60 and len(set(names)) == len(names)
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    assert f"{len(names)} hosted models ship" in readme
    assert {g.provider for g in HOSTED_GENERATORS} == {"fal", "replicate", "openai", "elevenlabs", "kie"}
    for gen in HOSTED_GENERATORS:
        provider, _, model = gen.name.partition("/")
        assert provider == gen.provider and model and gen.name == gen.name.lower() and " " not in gen.name


def test_every_kind_of_step_is_covered():
    shapes = {(input_kinds(g), g.artifact_type) for g in HOSTED_GENERATORS}
    none, image, audio = frozenset(), frozenset({"image"}), frozenset({"audio"})
    assert (none, "image") in shapes  # text -> image
    assert (image, "image") in shapes  # image -> image (edit, upscale)
    assert (image, "video") in shapes  # image -> video
    assert (none, "video") in shapes  # text -> video
    assert (audio, "text") in shapes  # audio -> text
    speech = {"openai/tts-1", "elevenlabs/multilingual-v2"}
    music_or_effects = {"replicate/musicgen", "elevenlabs/sound-effects"}
    text_to_audio = {g.name for g in HOSTED_GENERATORS if (input_kinds(g), g.artifact_type) == (none, "audio")}
    assert speech <= text_to_audio and music_or_effects & text_to_audio


FAMILIES = {  # Boards' families, each with one entry and the shape of step it is
    "video-to-video": ("fal/wan-2.2-video-to-video", {"video"}, "video"),
    "lipsync": ("fal/sync-lipsync-2", {"video", "audio"}, "video"),
    "avatar": ("fal/omnihuman", {"image", "audio"}, "video"),
    "upscaling": ("fal/topaz-upscale-image", {"image"}, "image"),
    "background removal": ("fal/birefnet-v2", {"image"}, "image"),
    "music": ("fal/stable-audio-2.5", set(), "audio"),
    "suno music (only on Kie)": ("kie/suno-v5", set(), "audio"),
    "sound effects": ("elevenlabs/sound-effects", set(), "audio"),
    "speech-to-text": ("fal/wizper", {"audio"}, "text"),
    "image edit": ("fal/nano-banana-edit", {"image"}, "image"),
    "virtual try-on": ("fal/fashn-tryon", {"image"}, "image"),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_of_boards_catalogue_has_an_entry(family):
    name, inputs, output = FAMILIES[family]
    gen = hosted(name)
    assert (input_kinds(gen), gen.artifact_type) == (frozenset(inputs), output)


def test_every_price_names_its_unit_source_and_the_day_it_was_checked():
    for gen in HOSTED_GENERATORS:
        pricing = gen.spec.pricing
        assert pricing.source.startswith("https://") and isinstance(pricing.checked, dt.date)
        for term in pricing.terms:
            assert term.price.unit and str(term.price.usd) in gen.cost_model


@pytest.mark.parametrize("gen", HOSTED_GENERATORS, ids=lambda g: g.name)
def test_without_its_key_a_generator_is_unavailable_with_the_fix(monkeypatch, gen):
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(f"{var}_BLOCK", raising=False)
    (cred,) = gen.credentials
    availability = gen.availability()
    assert not availability.ok
    if gen.lifecycle.status == "shut_down":  # no key brings it back: the fix is its replacement
        assert gen.lifecycle.replacement in availability.fix
    else:
        assert cred.env_var in availability.fix and cred.signup_url in availability.fix


async def test_running_without_a_key_fails_clearly_before_any_request(fake, hosted_ctx, monkeypatch):
    monkeypatch.delenv("FAL_KEY")
    with pytest.raises(MissingCredentialError) as info:
        await hosted("fal/flux-schnell").run({"prompt": "a fox"}, hosted_ctx)
    assert "FAL_KEY" in str(info.value) and "https://fal.ai/dashboard/keys" in str(info.value)
    assert fake.request_log == []  # nothing was sent, so nothing was paid


async def test_inputs_outside_the_models_bounds_fail_before_any_request(fake, hosted_ctx):
    from generators.errors import InputValidationError

    with pytest.raises(InputValidationError) as info:
        await hosted("fal/flux-dev").run({"prompt": "x", "num_inference_steps": 80, "num_images": 9}, hosted_ctx)
    assert {field for field, _ in info.value.problems} == {"num_inference_steps", "num_images"}
    with pytest.raises(InputValidationError, match="transparent"):
        await hosted("openai/gpt-image-2").run(
            {"prompt": "x", "background": "transparent", "output_format": "jpeg"}, hosted_ctx
        )
    assert fake.request_log == []
