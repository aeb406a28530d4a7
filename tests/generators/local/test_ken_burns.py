"""local/ken-burns: the MP4 decodes at the asked size and length, moves the way asked, smoothly, and repeats exactly."""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
from _media_checks import (
    BT709,
    CAPTION_RGB,
    caption_pixels,
    colour_tags,
    decode_video,
    frame_diffs,
    make_image,
    path_of,
)
from PIL import Image, ImageOps

from generators.context import GeneratorContext
from generators.errors import ArtifactDecodeError, InputValidationError
from generators.local.ken_burns import KenBurnsGenerator, Motion, plan_ken_burns
from generators.local.procedural_image import ProceduralImageInput, render
from generators.storage import LocalStore

gen = KenBurnsGenerator()
SMALL = {"resolution": "320x180", "duration": 1.0, "fps": 24}
PRESETS = [m.value for m in Motion if m is not Motion.CUSTOM]
# Big enough for the caption's letters to survive scaling and 4:2:0; a dark scene, so only the caption is near-white.
CAPTIONED = {"resolution": "640x360", "duration": 0.5, "fps": 24}
CAPTION = "Night falls on the hills"


async def _clip(ctx, image, **inputs):
    result = await gen.run({"image": image, **SMALL, **inputs}, ctx)
    return decode_video(await path_of(ctx, result.primary)), result


async def test_zoom_in_decodes_at_the_asked_size_length_and_frame_count(ctx):
    image = await make_image(ctx, 640, 360)
    video, result = await _clip(ctx, image, motion="zoom-in", easing="linear")
    assert (video.width, video.height, video.codec, video.pix_fmt) == (320, 180, "h264", "yuv420p")
    assert len(video.frames) == 24
    assert abs(video.duration - 1.0) <= 1 / 24
    assert video.audio_streams == 0
    artifact = result.primary
    assert (artifact.width, artifact.height, artifact.fps, artifact.format) == (320, 180, 24.0, "mp4")
    assert artifact.parents == (image.sha256,)
    assert result.compute_seconds > 0
    assert min(f.mean() for f in video.frames) > 40, "a frame is (nearly) black"
    diffs = frame_diffs(video.frames)
    assert min(diffs) > 1.0, f"the picture freezes somewhere: {diffs}"
    # It starts on the whole image and ends on its centre, magnified 1.25x.
    first, last = video.frames[0].astype(np.uint8), video.frames[-1]
    with Image.open(await path_of(ctx, image)) as src:
        whole = np.asarray(src.convert("RGB").resize((320, 180), Image.Resampling.LANCZOS), dtype=np.int16)
    start_error = np.abs(whole - first)[4:-4, 4:-4].mean()  # yuv420p blurs the fine red pattern a little
    assert start_error < 6 and start_error < np.abs(whole - video.frames[2])[4:-4, 4:-4].mean() / 2, (
        "the first frame is not the whole image"
    )
    centre = Image.fromarray(first).crop((32, 18, 288, 162)).resize((320, 180), Image.Resampling.BICUBIC)
    magnified_error = np.abs(np.asarray(centre, dtype=np.int16) - last)[10:-10, 10:-10].mean()
    unchanged_error = np.abs(first.astype(np.int16) - last)[10:-10, 10:-10].mean()
    assert magnified_error < unchanged_error / 3, (magnified_error, unchanged_error)


async def test_slow_motion_is_smooth_with_no_stalled_frames(ctx):
    """A move of a fraction of a pixel per frame must still show in every frame (zoompan would stall)."""
    image = await make_image(ctx, 640, 360)
    video, _ = await _clip(
        ctx,
        image,
        motion="custom",
        easing="linear",
        start_rect={"x": 0, "y": 0, "width": 1, "height": 1},
        end_rect={"x": 0.015, "y": 0.015, "width": 0.97, "height": 0.97},
    )
    diffs = np.array(frame_diffs(video.frames))
    assert diffs.min() > 0.4 * np.median(diffs), f"uneven motion, some frames stall: {diffs.round(2)}"
    assert diffs.std() / diffs.mean() < 0.4, f"jittery motion: {diffs.round(2)}"


@pytest.mark.parametrize(
    ("motion", "channel", "direction"),
    [("pan-right", 1, +1), ("pan-left", 1, -1), ("pan-down", 2, +1), ("pan-up", 2, -1)],
)
async def test_pans_travel_the_way_they_are_named(ctx, motion, channel, direction):
    # The test image's green grows left→right and its blue top→bottom, so a pan shows up as a trend.
    image = await make_image(ctx, 480, 480)
    video, _ = await _clip(ctx, image, motion=motion, zoom=1.5, duration=0.5)
    means = [float(f[..., channel].mean()) for f in video.frames]
    assert direction * (means[-1] - means[0]) > 30, means
    steps = np.diff(means) * direction
    assert (steps >= -0.5).all(), f"the pan goes back and forth: {steps.round(2)}"


@functools.cache
def _night_still(caption: str | None) -> bytes:
    """local/procedural-image's picture (made once per test session: it is a pure function of its inputs)."""
    return render(ProceduralImageInput(prompt="night mountains", size="1024x576", caption=caption))


async def _still(ctx, caption: str | None = None):
    return await ctx.store_image_result(_night_still(caption), format="png")


@functools.cache
def _reference_caption_pixels(caption: str | None) -> int:
    """Caption pixels of the whole still brought to the output size: what a viewer should see of the caption."""
    with Image.open(io.BytesIO(_night_still(caption))) as src:
        whole = src.convert("RGB").resize((640, 360), Image.Resampling.LANCZOS)
    return caption_pixels(np.asarray(whole, dtype=np.int16))


@pytest.mark.parametrize("motion", PRESETS)
async def test_a_caption_band_of_the_still_stays_whole_in_every_frame(ctx, motion):
    """local/procedural-image's caption: held at the bottom while the camera moves over the picture above it."""
    expected = _reference_caption_pixels(CAPTION)
    assert expected > 100 and _reference_caption_pixels(None) == 0, "what is counted is not the caption"
    video, _ = await _clip(ctx, await _still(ctx, CAPTION), motion=motion, caption_band=0.15, **CAPTIONED)
    counts = [caption_pixels(f) for f in video.frames]
    assert min(counts) >= 0.7 * expected, (expected, counts)
    assert max(counts) <= 1.3 * expected, (expected, counts)
    diffs = frame_diffs([f[: int(0.75 * 360)] for f in video.frames])
    assert min(diffs) > 0.2, f"the picture above the band does not move: {diffs}"


@pytest.mark.parametrize("motion", PRESETS)
async def test_a_caption_drawn_after_the_motion_stays_put_in_every_frame(ctx, motion):
    expected = _reference_caption_pixels(CAPTION)
    video, result = await _clip(ctx, await _still(ctx), motion=motion, caption=CAPTION, **CAPTIONED)
    counts = [caption_pixels(f) for f in video.frames]
    assert min(counts) >= 0.7 * expected, (expected, counts)
    masks = [(np.abs(f[-72:] - CAPTION_RGB) < 45).all(axis=-1) for f in video.frames]
    assert all((m == masks[0]).mean() > 0.99 for m in masks), "the caption moves"
    assert colour_tags(await path_of(ctx, result.primary)) == BT709


async def test_every_clip_carries_full_bt709_colour_tags(ctx):
    image = await make_image(ctx, 320, 180)
    _, result = await _clip(ctx, image, motion="pan-left", duration=0.5)
    assert colour_tags(await path_of(ctx, result.primary)) == BT709


@pytest.mark.parametrize("captions", [{}, {"caption_band": 0.1, "caption": "Odd sizes too"}])
async def test_same_inputs_give_identical_bytes_and_progress_is_reported(tmp_path, captions):
    """Two runs in two separate stores, as on two machines sharing a cache: the same bytes."""
    seen: list[tuple[float, str]] = []
    shas = []
    for attempt in ("first", "second"):
        store = LocalStore(tmp_path / attempt)
        async with GeneratorContext(store, progress=lambda f, m: seen.append((f, m))) as ctx:
            image = await make_image(ctx, 333, 251)  # odd sizes must work too
            result = await gen.run({"image": image, **SMALL, "motion": "zoom-out", **captions}, ctx)
            shas.append(result.primary.sha256)
    assert shas[0] == shas[1]
    ffmpeg_reports = [f for f, m in seen if "local/ken-burns (24 frames)" in m]
    assert ffmpeg_reports and all(0 <= f <= 1 for f in ffmpeg_reports)
    assert seen[-1][0] == 1.0


async def test_exif_rotation_is_applied_and_transparency_shows_black(ctx):
    # A phone-style JPEG: stored on its side, with EXIF saying "turn 90° clockwise to view".
    upright = np.zeros((320, 180, 3), dtype=np.uint8)
    upright[:160] = 230  # bright top half…
    upright[:160, :30] = 110  # …with a grey stripe down its left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation 6: rotate 90° clockwise to display
    path = ctx.temp_path(".jpg")
    Image.fromarray(np.rot90(upright)).save(path, exif=exif, quality=95)
    with Image.open(path) as check:
        assert ImageOps.exif_transpose(check).size == (180, 320)
    jpeg = await ctx.store_image_result(path)
    video, _ = await _clip(ctx, jpeg, resolution="180x320", motion="zoom-in", zoom=1.05)
    first = video.frames[0].mean(axis=2)
    # Upright, it fills the 9:16 frame: bright on top, the stripe at the left, nothing cropped or stretched.
    assert first[:140].mean() > 180 and first[-140:].mean() < 40, "the EXIF rotation was not applied"
    assert abs(first[20:140, 3:22].mean() - 110) < 20, "the left edge of the picture is cropped or stretched"
    assert first[20:140, 50:170].mean() > 200, "the picture is shifted"

    rgba = np.full((180, 320, 4), 255, dtype=np.uint8)
    rgba[:, :160, 3] = 0  # left half fully transparent over white
    path = ctx.temp_path(".png")
    Image.fromarray(rgba, "RGBA").save(path)
    video, _ = await _clip(ctx, await ctx.store_image_result(path), motion="zoom-in", zoom=1.05)
    first = video.frames[0].mean(axis=2)
    assert first[:, :140].mean() < 30 and first[:, -140:].mean() > 220, "transparency is not black"


async def test_a_still_damaged_in_the_store_fails_with_a_clear_decode_error(ctx):
    image = await make_image(ctx, 320, 180)
    stored = await path_of(ctx, image)
    original = stored.read_bytes()
    for damaged in (original[:400], b"not an image at all"):  # cut short, or overwritten
        stored.write_bytes(damaged)
        with pytest.raises(ArtifactDecodeError, match="no longer decodes.*re-run the step that made it"):
            await gen.run({"image": image, **SMALL}, ctx)


def _plan(width: int, height: int, **inputs):
    return plan_ken_burns(gen.parse_inputs({"image": _fake_image(width, height), **inputs}), width, height)


def test_views_keep_the_output_aspect_and_stay_inside_the_canvas():
    plan = _plan(1000, 1000, resolution="1280x720", motion="custom",
                 start_rect={"x": 0, "y": 0, "width": 1, "height": 1},
                 end_rect={"x": 0.5, "y": 0.5, "width": 0.5, "height": 0.2})  # fmt: skip
    cw, ch = plan.canvas
    sx, sy = cw / plan.crop[2], ch / plan.crop[3]  # canvas pixels per image pixel
    for view in (plan.start, plan.end):
        assert (view.width / sx) / (view.height / sy) == pytest.approx(1280 / 720)  # in image pixels
        assert view.left >= 0 and view.top >= 0
        assert view.left + view.width <= cw + 1e-6 and view.top + view.height <= ch + 1e-6
    assert plan.end.height / sy == pytest.approx(200)  # the end rect is 500x200: the view fits inside it
    assert plan.frames == 150 and cw % 2 == 0 and ch % 2 == 0


@pytest.mark.parametrize(
    ("width", "height", "inputs"),
    [
        (1000, 4000, {"motion": "pan-down"}),  # a tall still panned top to bottom in a wide frame
        (8000, 1000, {"motion": "pan-right"}),  # a panorama
        (4000, 3000, {"motion": "zoom-in", "zoom": 2.0}),  # a big photo, zoomed deep
    ],
)
def test_the_tightest_view_is_sampled_at_least_one_to_one(width, height, inputs):
    """…or at the image's own detail, when the view holds fewer image pixels than the output has."""
    plan = _plan(width, height, resolution="1280x720", **inputs)
    sx, sy = plan.canvas[0] / plan.crop[2], plan.canvas[1] / plan.crop[3]
    tight_w, tight_h = min(plan.start.width, plan.end.width), min(plan.start.height, plan.end.height)
    assert tight_w >= min(1280, tight_w / sx) * 0.99, (plan.canvas, tight_w, tight_w / sx)
    assert tight_h >= min(720, tight_h / sy) * 0.99, (plan.canvas, tight_h, tight_h / sy)
    assert plan.canvas[0] * plan.canvas[1] <= 3840 * 2160 * 1.01


def test_the_camera_moves_over_the_picture_above_a_held_band():
    plan = _plan(1024, 576, resolution="640x360", motion="pan-down", caption_band=0.15)
    assert plan.band_rows == round(0.15 * 576)
    sy = plan.canvas[1] / plan.crop[3]
    assert plan.crop[1] + plan.crop[3] <= 576 - plan.band_rows  # the crop stays above the band
    assert (plan.end.top + plan.end.height) / sy == pytest.approx(576 - plan.band_rows)  # and the pan ends on it


def test_a_held_band_taller_than_half_the_frame_is_refused_with_a_fix():
    with pytest.raises(InputValidationError, match="cover more than half of the 1280x720 frame; give a smaller band"):
        _plan(1000, 4000, resolution="1280x720", motion="pan-down", caption_band=0.2)


def test_huge_deep_zooms_stay_within_the_canvas_budget():
    plan = _plan(12000, 9000, resolution="1920x1080", motion="zoom-in", zoom=3.0)
    assert plan.canvas[0] * plan.canvas[1] <= 3840 * 2160 * 1.01
    assert plan.canvas[0] >= 1920 and plan.canvas[1] >= 1080


def _fake_image(width: int, height: int) -> dict:
    return {
        "kind": "image",
        "sha256": "0" * 64,
        "storage_url": "file:///nowhere.png",
        "format": "png",
        "size_bytes": 1,
        "width": width,
        "height": height,
    }


@pytest.mark.parametrize(
    ("inputs", "field", "words"),
    [
        ({"duration": 0.2}, "duration", "greater than or equal to 0.5"),
        ({"duration": 61}, "duration", "less than or equal to 60"),
        ({"fps": 29}, "fps", "24, 25, 30 or 60"),
        ({"resolution": "1000x1000"}, "resolution", "'320x180'"),
        ({"motion": "spin"}, "motion", "'zoom-in'"),
        ({"easing": "bounce"}, "easing", "'linear' or 'ease-in-out'"),
        ({"zoom": 5}, "zoom", "less than or equal to 3"),
        ({"caption_band": 0.5}, "caption_band", "less than or equal to 0.4"),
        ({"caption": " \n "}, "caption", "only whitespace"),
        ({"caption": "a\x07b"}, "caption", "control characters"),
        ({"motion": "custom"}, "(inputs)", "needs both start_rect and end_rect"),
        ({"start_rect": {"x": 0.1, "width": 0.5}}, "(inputs)", "used only with motion='custom'"),
        (
            {"motion": "custom", "start_rect": {}, "end_rect": {"x": 0.5, "width": 0.6}},
            "end_rect",
            "reaches past the image",
        ),
        (
            {"motion": "custom", "start_rect": {"width": 0.01}, "end_rect": {}},
            "start_rect.width",
            "greater than or equal to 0.05",
        ),
    ],
)
def test_bad_inputs_are_rejected_with_a_clear_message(inputs, field, words):
    with pytest.raises(InputValidationError) as caught:
        gen.parse_inputs({"image": _fake_image(640, 360), **inputs})
    message = str(caught.value)
    assert f"- {field}:" in message and words in message, message
