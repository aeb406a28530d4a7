"""Every hosted generator end to end: real client → fake provider → output downloaded, stored and probed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from PIL import Image, ImageStat

from generators.media import probe
from tests.fakes import media
from tests.fakes.fixtures import hosted


def stored_path(ctx, artifact):
    path = ctx.store.local_path(ctx.store.key_for(artifact.storage_url))
    assert path is not None and path.exists()
    return path


def assert_not_blank(path) -> None:
    with Image.open(path) as img:
        spread = [hi - lo for lo, hi in ImageStat.Stat(img.convert("RGB")).extrema]
    assert max(spread) > 50, f"{path.name} looks blank"


@pytest.fixture
async def photo(hosted_ctx):
    return await hosted_ctx.store_image_result(media.image(200, 150, "png", 4))


@pytest.fixture
async def speech(hosted_ctx):
    return await hosted_ctx.store_audio_result(media.audio(2.0, "mp3", 44100, 1, 3))


async def test_fal_flux_dev_image_is_stored_probed_and_billed_by_its_size(fake, hosted_ctx):
    result = await hosted("fal/flux-dev").run(
        {"prompt": "a lighthouse at dusk", "image_size": "square", "num_images": 2}, hosted_ctx
    )
    images = result.artifacts()
    assert [(a.width, a.height, a.format) for a in images] == [(512, 512, "jpeg")] * 2
    assert_not_blank(stored_path(hosted_ctx, images[0]))
    assert result.actual_cost_usd == Decimal("0.05")  # two images, each rounded up to one megapixel
    (submission,) = fake.submissions("fal", "fal-ai/flux/dev")
    assert result.external_job_ids == [submission.job_id]
    assert await hosted_ctx.previous_job() is None  # the journal entry is cleared once the result is stored


async def test_fal_clarity_upscaler_uploads_its_input_and_lineage_points_back(fake, hosted_ctx, photo):
    result = await hosted("fal/clarity-upscaler").run({"image_url": photo, "upscale_factor": 2}, hosted_ctx)
    out = result.primary
    assert (out.width, out.height) == (400, 300)  # the fake upscaled the bytes we uploaded
    assert out.parents == (photo.sha256,)
    assert fake.submissions("fal")[0].input["image_url"].startswith(fake.url + "/files/")


async def test_fal_kling_image_to_video_clip_has_the_asked_duration(fake, hosted_ctx, photo):
    result = await hosted("fal/kling-2.1-image-to-video").run(
        {"prompt": "waves roll in", "image_url": photo}, hosted_ctx
    )
    clip = result.primary
    assert clip.kind == "video" and clip.format == "mp4"
    assert clip.duration == pytest.approx(5.0, abs=0.1) and clip.fps == pytest.approx(24)
    assert probe(stored_path(hosted_ctx, clip), "video").width == clip.width
    assert result.cost_usd == Decimal("0.28")


async def test_fal_kling_text_to_video_follows_the_aspect_ratio(fake, hosted_ctx):
    result = await hosted("fal/kling-2.5-text-to-video").run(
        {"prompt": "a tall tower", "aspect_ratio": "9:16", "duration": "10"}, hosted_ctx
    )
    clip = result.primary
    assert clip.height > clip.width and clip.duration == pytest.approx(10.0, abs=0.1)


async def test_replicate_flux_schnell_returns_every_output(fake, hosted_ctx):
    result = await hosted("replicate/flux-schnell").run(
        {"prompt": "a red kite", "num_outputs": 2, "megapixels": "0.25", "aspect_ratio": "16:9"}, hosted_ctx
    )
    images = result.artifacts()
    assert len(images) == 2 and all(a.format == "webp" and a.width > a.height for a in images)
    assert result.cost_usd == Decimal("0.006")


async def test_replicate_real_esrgan_records_compute_seconds_times_the_t4_price(fake, hosted_ctx, photo):
    fake.set(job_seconds=0.2)
    result = await hosted("replicate/real-esrgan").run({"image": photo, "scale": 2}, hosted_ctx)
    assert (result.primary.width, result.primary.height) == (400, 300)
    assert result.compute_seconds == pytest.approx(0.2, abs=0.01)
    assert result.actual_cost_usd == Decimal("0.000225") * Decimal(str(result.compute_seconds))


async def test_replicate_musicgen_audio_is_stereo_at_32khz(fake, hosted_ctx):
    result = await hosted("replicate/musicgen").run({"prompt": "calm piano", "duration": 3}, hosted_ctx)
    audio = result.primary
    assert (audio.format, audio.channels, audio.sample_rate) == ("wav", 2, 32000)
    assert audio.duration == pytest.approx(3.0, abs=0.05)


async def test_replicate_whisper_transcribes_the_uploaded_audio(fake, hosted_ctx, speech):
    result = await hosted("replicate/whisper").run({"audio": speech}, hosted_ctx)
    text = result.primary
    assert text.kind == "text" and "2.0 seconds" in text.content
    assert text.parents == (speech.sha256,)


async def test_replicate_minimax_video_from_a_first_frame(fake, hosted_ctx, photo):
    result = await hosted("replicate/minimax-video-01").run(
        {"prompt": "the scene comes alive", "first_frame_image": photo}, hosted_ctx
    )
    assert result.primary.duration == pytest.approx(6.0, abs=0.1)
    assert fake.submissions("replicate")[0].input["first_frame_image"].startswith(fake.url)


async def test_openai_image_cost_comes_from_the_reported_tokens(fake, hosted_ctx):
    prompt = "a teapot on a table"  # the fake counts len // 4 + 1 = 5 prompt tokens
    result = await hosted("openai/gpt-image-2").run(
        {"prompt": prompt, "quality": "low", "size": "1024x1024"}, hosted_ctx
    )
    image = result.primary
    assert (image.width, image.height, image.format) == (1024, 1024, "png")
    assert_not_blank(stored_path(hosted_ctx, image))
    assert result.actual_cost_usd == Decimal("0.00816") + Decimal("0.000025")  # 272 output tokens at $30/M


async def test_openai_image_edit_sends_each_image(fake, hosted_ctx, photo):
    other = await hosted_ctx.store_image_result(media.image(120, 90, "png", 7))
    result = await hosted("openai/gpt-image-2-edit").run(
        {"prompt": "put them side by side", "image": [photo, other], "quality": "low", "size": "1536x1024"}, hosted_ctx
    )
    assert (result.primary.width, result.primary.height) == (1536, 1024)
    assert set(result.primary.parents) == {photo.sha256, other.sha256}
    assert result.actual_cost_usd > Decimal("0.0122")  # includes the reported input image tokens at $8/M


@pytest.mark.parametrize(("name", "fmt"), [("openai/tts-1", "mp3"), ("openai/tts-1-hd", "flac")])
async def test_openai_speech_is_stored_as_audio_of_the_right_length(fake, hosted_ctx, name, fmt):
    text = "Every scene needs a narrator, and this one has a calm voice."  # 60 chars: 4 s at the fake's pace
    result = await hosted(name).run({"input": text, "voice": "sage", "response_format": fmt}, hosted_ctx)
    assert result.primary.format == fmt and result.primary.duration == pytest.approx(4.0, abs=0.1)


async def test_openai_whisper_bills_the_reported_duration(fake, hosted_ctx, speech):
    result = await hosted("openai/whisper-1").run({"file": speech, "language": "en"}, hosted_ctx)
    assert "2.0 seconds" in result.primary.content
    # whisper-1 answers json whose usage says the seconds billed; boardflow no longer asks for verbose_json.
    assert result.actual_cost_usd == Decimal("0.006") * Decimal("2") / 60
    assert "response_format" not in fake.submissions("openai")[0].input


async def test_elevenlabs_speech_cost_comes_from_the_character_cost_header(fake, hosted_ctx):
    text = "Welcome back to the studio."
    result = await hosted("elevenlabs/multilingual-v2").run({"text": text}, hosted_ctx)
    audio = result.primary
    assert (audio.format, audio.sample_rate) == ("mp3", 44100) and audio.duration > 1
    assert result.actual_cost_usd == Decimal("0.0001") * len(text)


async def test_elevenlabs_flash_opus_output(fake, hosted_ctx):
    result = await hosted("elevenlabs/flash-v2.5").run(
        {"text": "Quick line.", "output_format": "opus_48000_64"}, hosted_ctx
    )
    assert (result.primary.format, result.primary.sample_rate) == ("ogg", 48000)
    assert result.actual_cost_usd == Decimal("0.0006")  # 11 characters at half a credit, rounded up


async def test_elevenlabs_sound_effect_duration(fake, hosted_ctx):
    result = await hosted("elevenlabs/sound-effects").run(
        {"text": "a door creaks", "duration_seconds": 2.5}, hosted_ctx
    )
    assert result.primary.duration == pytest.approx(2.5, abs=0.05)
    assert result.actual_cost_usd == Decimal("0.0063")  # the 63 credits of the character-cost header
