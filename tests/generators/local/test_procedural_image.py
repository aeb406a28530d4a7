"""local/procedural-image: the decoded picture has the asked size, has content, follows the prompt, repeats exactly."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from _media_checks import path_of
from PIL import Image

from generators.errors import InputValidationError
from generators.local.procedural_image import ProceduralImageGenerator

gen = ProceduralImageGenerator()


async def _pixels(ctx, **inputs) -> tuple[np.ndarray, object, object]:
    result = await gen.run(inputs, ctx)
    artifact = result.primary
    with Image.open(await path_of(ctx, artifact)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float32), artifact, result


@pytest.mark.parametrize(("size", "fmt"), [("512x512", "png"), ("1024x576", "jpeg"), ("576x1024", "webp")])
async def test_image_has_requested_size_and_format_and_is_not_flat(ctx, size, fmt):
    pixels, artifact, result = await _pixels(ctx, prompt="misty teal mountains at dawn", size=size, format=fmt)
    width, height = (int(v) for v in size.split("x"))
    assert pixels.shape == (height, width, 3)
    assert (artifact.width, artifact.height, artifact.format) == (width, height, fmt)
    assert pixels.std() > 12, "the picture is close to one flat colour"
    # Structure at two scales: the sky differs from the ground, and neighbouring pixels are not all equal.
    assert abs(pixels[: height // 4].mean() - pixels[-height // 4 :].mean()) > 8
    assert np.abs(np.diff(pixels, axis=1)).mean() > 0.5
    assert result.estimated_cost_usd == Decimal(0)
    assert result.compute_seconds > 0
    assert artifact.generator == "local/procedural-image"


async def test_same_prompt_and_seed_give_identical_bytes(ctx):
    first = (await gen.run({"prompt": "a lighthouse in a storm", "seed": 7, "size": "512x512"}, ctx)).primary
    second = (await gen.run({"prompt": "a lighthouse in a storm", "seed": 7, "size": "512x512"}, ctx)).primary
    assert first.sha256 == second.sha256
    assert (await path_of(ctx, first)).read_bytes() == (await path_of(ctx, second)).read_bytes()


async def test_different_prompts_and_seeds_give_visibly_different_images(ctx):
    a, _, _ = await _pixels(ctx, prompt="a lighthouse in a storm", size="512x512")
    b, _, _ = await _pixels(ctx, prompt="a quiet meadow in spring", size="512x512")
    c, _, _ = await _pixels(ctx, prompt="a lighthouse in a storm", seed=1, size="512x512")
    assert np.abs(a - b).mean() > 15, "two different prompts look nearly the same"
    assert np.abs(a - c).mean() > 8, "two seeds of one prompt look nearly the same"


async def test_colour_words_steer_the_palette(ctx):
    red, _, _ = await _pixels(ctx, prompt="crimson red scarlet sky", size="512x512")
    blue, _, _ = await _pixels(ctx, prompt="azure blue navy sky", size="512x512")
    # Look at the sky (top third), where the named colours land.
    red_sky, blue_sky = red[: 512 // 3].mean(axis=(0, 1)), blue[: 512 // 3].mean(axis=(0, 1))
    assert red_sky[0] > red_sky[2] + 20, f"asked for red, sky is {red_sky}"
    assert blue_sky[2] > blue_sky[0] + 20, f"asked for blue, sky is {blue_sky}"


async def test_caption_is_drawn_along_the_bottom_only(ctx):
    plain, _, _ = await _pixels(ctx, prompt="desert dunes at noon", size="768x768")
    captioned, _, _ = await _pixels(ctx, prompt="desert dunes at noon", size="768x768", caption="Scene 1 — the dunes")
    top = slice(0, int(768 * 0.8))
    assert np.array_equal(plain[top], captioned[top]), "the caption changed pixels outside its band"
    band_plain, band_text = plain[-70:], captioned[-70:]
    assert np.abs(band_plain - band_text).mean() > 5
    assert (band_text.min(axis=2) > 235).sum() > 200, "no light text pixels in the caption band"
    assert (band_text.max(axis=2) < 40).sum() > 1000, "the caption has no dark band behind it"


@pytest.mark.parametrize(
    ("inputs", "field", "words"),
    [
        ({"prompt": ""}, "prompt", "at least 1 character"),
        ({"prompt": "   \n\t "}, "prompt", "empty or only whitespace"),
        ({"prompt": "sea", "size": "800x600"}, "size", "'512x512'"),
        ({"prompt": "sea", "format": "gif"}, "format", "'png', 'jpeg' or 'webp'"),
        ({"prompt": "sea", "seed": -1}, "seed", "greater than or equal to 0"),
        ({"prompt": "sea", "seed": 2**32}, "seed", "less than or equal to 4294967295"),
        ({"prompt": "sea", "caption": "   "}, "caption", "only whitespace"),
        ({"prompt": "sea", "caption": "bell\x07"}, "caption", "control characters"),
        ({"prompt": "x" * 2001}, "prompt", "at most 2000 characters"),
    ],
)
def test_bad_inputs_are_rejected_with_a_clear_message(inputs, field, words):
    with pytest.raises(InputValidationError) as caught:
        gen.parse_inputs(inputs)
    message = str(caught.value)
    assert f"- {field}:" in message and words in message, message
    assert "local/procedural-image" in message
