"""local/image-resize: exact target sizes; fit pads, fill crops the centre, stretch distorts; formats convert."""

from __future__ import annotations

import numpy as np
import pytest
from _media_checks import make_image, path_of
from PIL import Image

from generators.errors import InputValidationError
from generators.local.image_resize import ImageResizeGenerator

gen = ImageResizeGenerator()


async def _resize(ctx, image, **inputs):
    artifact = (await gen.run({"image": image, **inputs}, ctx)).primary
    with Image.open(await path_of(ctx, artifact)) as img:
        img.load()
        decoded = img.copy()
        decoded.format = img.format  # copy() drops it; the tests check what the bytes really are
        return decoded, artifact


@pytest.mark.parametrize("mode", ["fit", "fill", "stretch"])
async def test_every_mode_gives_the_exact_target_size(ctx, mode):
    source = await make_image(ctx, 300, 200)
    img, artifact = await _resize(ctx, source, width=123, height=77, mode=mode)
    assert img.size == (123, 77)
    assert (artifact.width, artifact.height, artifact.format) == (123, 77, "png")
    assert artifact.parents == (source.sha256,)


async def test_fit_letterboxes_with_the_pad_colour(ctx):
    source = await make_image(ctx, 300, 200)  # 3:2 into a square: bands above and below
    img, _ = await _resize(ctx, source, width=200, height=200, mode="fit", pad_color="#FF00FF")
    pixels = np.asarray(img.convert("RGB"), dtype=np.int16)
    band = (200 - round(200 * 200 / 300)) // 2  # 33 rows each side
    assert np.all(pixels[: band - 1] == (255, 0, 255)) and np.all(pixels[-(band - 1) :] == (255, 0, 255))
    middle = pixels[band + 2 : -band - 2]
    assert (np.abs(middle - (255, 0, 255)).sum(axis=2) > 30).mean() > 0.95, "the picture itself is missing"


async def test_fill_crops_the_centre_without_padding(ctx):
    source = await make_image(ctx, 300, 200)
    img, _ = await _resize(ctx, source, width=200, height=200, mode="fill")
    with Image.open(await path_of(ctx, source)) as src:
        centre = np.asarray(src.convert("RGB"), dtype=np.int16)[:, 50:250]
    # Scale factor 1 here: the output is the source's centre 200x200, pixel for pixel (Lanczos at 1:1).
    assert np.abs(np.asarray(img, dtype=np.int16) - centre).mean() < 1.0


async def test_stretch_changes_the_proportions(ctx):
    source = await make_image(ctx, 300, 200)
    img, _ = await _resize(ctx, source, width=100, height=300, mode="stretch")
    pixels = np.asarray(img, dtype=np.float32)
    # The source's green channel is a left-to-right ramp: still a full ramp across the narrow output.
    assert pixels[:, :5, 1].mean() < 20 and pixels[:, -5:, 1].mean() > 235


async def test_format_conversion_and_transparent_padding(ctx):
    source = await make_image(ctx, 300, 200)
    jpeg, artifact = await _resize(ctx, source, width=160, height=90, format="jpeg")
    assert jpeg.format == "JPEG" and artifact.format == "jpeg"
    webp, artifact = await _resize(ctx, source, width=100, height=100, mode="fit", pad_color="#00000000", format="webp")
    assert webp.format == "WEBP" and webp.mode == "RGBA"
    alpha = np.asarray(webp)[..., 3]
    assert alpha[0].max() == 0 and alpha[50].min() == 255, "padding should be transparent, the picture opaque"


async def test_same_inputs_give_identical_bytes(ctx):
    source = await make_image(ctx, 300, 200)
    first = (await gen.run({"image": source, "width": 64, "height": 64, "format": "webp"}, ctx)).primary
    second = (await gen.run({"image": source, "width": 64, "height": 64, "format": "webp"}, ctx)).primary
    assert first.sha256 == second.sha256


@pytest.mark.parametrize(
    ("inputs", "field", "words"),
    [
        ({"width": 8, "height": 64}, "width", "greater than or equal to 16"),
        ({"width": 64, "height": 9000}, "height", "less than or equal to 8192"),
        ({"width": 64, "height": 64, "mode": "zoom"}, "mode", "'fit', 'fill' or 'stretch'"),
        ({"width": 64, "height": 64, "pad_color": "red"}, "pad_color", "#RRGGBB or #RRGGBBAA"),
        ({"width": 64, "height": 64, "format": "bmp"}, "format", "'same', 'png', 'jpeg' or 'webp'"),
        ({"height": 64}, "width", "Field required"),
    ],
)
async def test_bad_inputs_are_rejected_with_a_clear_message(ctx, inputs, field, words):
    source = await make_image(ctx, 32, 32)
    with pytest.raises(InputValidationError) as caught:
        gen.parse_inputs({"image": source, **inputs})
    message = str(caught.value)
    assert f"- {field}:" in message and words in message, message
