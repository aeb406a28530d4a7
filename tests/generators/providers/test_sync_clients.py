"""OpenAI and ElevenLabs clients against the fake server: base64 images, multipart edits, streamed audio."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from generators.errors import ProviderInputError
from generators.media import probe
from generators.providers.elevenlabs import ElevenLabsClient
from generators.providers.openai import OpenAIClient
from tests.fakes import media


async def test_openai_generation_decodes_base64_images_and_reports_usage(fake):
    async with OpenAIClient() as openai:
        answer = await openai.generate_images(
            {"model": "gpt-image-2", "prompt": "a teapot", "n": 2, "size": "1536x1024", "quality": "low"}
        )
    images = [Image.open(io.BytesIO(b)) for b in answer.image_bytes()]
    assert [im.size for im in images] == [(1536, 1024), (1536, 1024)]
    assert answer.usage.output_tokens == 2 * 400  # low quality 1536x1024 is 400 tokens an image


async def test_openai_edit_sends_every_image_as_multipart(fake, tmp_path):
    paths = []
    for i in range(2):
        path = tmp_path / f"in{i}.png"
        path.write_bytes(media.image(64, 64, "png", i))
        paths.append((path, "image/png"))
    async with OpenAIClient() as openai:
        answer = await openai.edit_images({"model": "gpt-image-2", "prompt": "merge them", "size": "1024x1024"}, paths)
    assert answer.usage.input_tokens_details.image_tokens == 2 * 765  # the fake counted two image parts


async def test_openai_speech_streams_audio_to_a_file(fake, tmp_path):
    dest = tmp_path / "speech.wav"
    async with OpenAIClient() as openai:
        await openai.speech({"model": "tts-1", "input": "x" * 45, "voice": "nova", "response_format": "wav"}, dest)
    info = probe(dest, "audio")
    assert info.format == "wav" and info.duration == pytest.approx(3.0, abs=0.05)


async def test_openai_transcription_uploads_the_audio(fake, tmp_path):
    src = tmp_path / "talk.mp3"
    src.write_bytes(media.audio(2.5, "mp3"))
    async with OpenAIClient() as openai:
        text = await openai.transcribe(src, "audio/mpeg", {"model": "whisper-1", "response_format": "verbose_json"})
    assert text.duration == pytest.approx(2.5, abs=0.1)  # the fake measured the upload it received
    assert "2.5 seconds" in text.text


async def test_elevenlabs_speech_reports_the_credits_it_cost(fake, tmp_path):
    async with ElevenLabsClient() as eleven:
        answer = await eleven.text_to_speech(
            "JBFqnCBsd6RMkjVDRZzb",
            {"text": "Thirty characters of speech..", "model_id": "eleven_flash_v2_5"},
            output_format="mp3_44100_128",
            dest=tmp_path / "s.mp3",
        )
    assert answer.credits == 15  # half a credit a character on Flash
    assert answer.request_id and probe(answer.path, "audio").duration > 1


async def test_elevenlabs_sound_effect_has_the_asked_duration(fake, tmp_path):
    async with ElevenLabsClient() as eleven:
        answer = await eleven.sound_effect(
            {"text": "a door slams", "duration_seconds": 1.5}, output_format="opus_48000_64", dest=tmp_path / "fx.ogg"
        )
    assert probe(answer.path, "audio").duration == pytest.approx(1.5, abs=0.05)


async def test_elevenlabs_out_of_range_duration_is_an_input_error_with_the_field(fake, tmp_path):
    async with ElevenLabsClient() as eleven:
        with pytest.raises(ProviderInputError, match="duration_seconds"):
            await eleven.sound_effect(
                {"text": "boom", "duration_seconds": 45}, output_format="mp3_44100_128", dest=tmp_path / "fx.mp3"
            )
