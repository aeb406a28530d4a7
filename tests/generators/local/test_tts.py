"""local/tts: eSpeak NG speech is audible, grows with the text, follows rate and pitch, and refuses bad input."""

from __future__ import annotations

import pytest
from _audio_checks import decode_audio, fundamental_hz, rms_db, sounding_span

from generators.errors import InputError, InputValidationError
from generators.local.tts import ESpeakTTS

gen = ESpeakTTS()
SHORT = "Hello there."
LONG = "Hello there. This sentence is a good deal longer, so speaking it must take a good deal more time."


async def _speak(ctx, **inputs):
    result = await gen.run(inputs, ctx)
    return decode_audio(await ctx.resolve_artifact(result.primary)), result


async def test_speech_is_audible_and_grows_with_the_text(ctx):
    short, result = await _speak(ctx, text=SHORT)
    long, _ = await _speak(ctx, text=LONG)
    artifact = result.primary
    assert (artifact.format, artifact.channels, artifact.sample_rate) == ("wav", 1, 22050)
    assert artifact.duration == pytest.approx(short.duration, abs=0.01)
    assert result.compute_seconds > 0 and result.estimated_cost_usd == 0
    start, end = sounding_span(long.mono, long.rate)
    assert rms_db(long.mono[int(start * long.rate) : int(end * long.rate)]) > -26, "speech is too quiet to hear"
    assert end - start > 3.0, "nineteen words spoken in under three seconds"
    assert long.duration > 3 * short.duration, (short.duration, long.duration)
    # A voice has a pitch a person can hum: a fundamental in the range of speech.
    assert 70 < fundamental_hz(long.mono, long.rate) < 300


async def test_rate_and_pitch_change_what_you_hear(ctx):
    slow, _ = await _speak(ctx, text=LONG, rate=120)
    fast, _ = await _speak(ctx, text=LONG, rate=300)
    assert fast.duration < 0.6 * slow.duration, (slow.duration, fast.duration)
    low, _ = await _speak(ctx, text=LONG, pitch=10)
    high, _ = await _speak(ctx, text=LONG, pitch=90)
    assert fundamental_hz(high.mono, high.rate) > 1.3 * fundamental_hz(low.mono, low.rate)


async def test_languages_and_variants_speak(ctx):
    german, _ = await _speak(ctx, text="Guten Morgen, wie geht es Ihnen heute?", voice="de")
    female, _ = await _speak(ctx, text=LONG, voice="en-GB", variant="F3")
    male, _ = await _speak(ctx, text=LONG, voice="en-gb", variant="m1")
    assert rms_db(german.mono) > -35 and german.duration > 1.0
    assert fundamental_hz(female.mono, female.rate) > 1.2 * fundamental_hz(male.mono, male.rate)


@pytest.mark.parametrize("fmt", ["mp3", "ogg"])
async def test_compressed_formats_decode_to_the_same_speech(ctx, fmt):
    wav, _ = await _speak(ctx, text=SHORT)
    coded, result = await _speak(ctx, text=SHORT, format=fmt)
    assert result.primary.format == fmt
    assert coded.duration == pytest.approx(wav.duration, abs=0.06)
    assert rms_db(coded.mono) == pytest.approx(rms_db(wav.mono), abs=1.0)


async def test_same_input_gives_the_same_bytes(ctx):
    first = (await gen.run({"text": SHORT, "format": "mp3"}, ctx)).primary
    second = (await gen.run({"text": SHORT, "format": "mp3"}, ctx)).primary
    other = (await gen.run({"text": SHORT, "format": "mp3", "pitch": 70}, ctx)).primary
    assert first.sha256 == second.sha256 != other.sha256


async def test_text_with_nothing_to_say_fails_clearly(ctx):
    with pytest.raises(InputError, match="produced no sound"):
        await gen.run({"text": "..."}, ctx)


@pytest.mark.parametrize(
    ("inputs", "field", "message"),
    [
        ({"text": ""}, "text", "at least 1 character"),
        ({"text": "   \n "}, "text", "text is empty"),
        ({"text": "a" * 5001}, "text", "at most 5000 characters"),
        ({"text": "hi", "voice": "martian"}, "voice", "unknown voice 'martian'"),
        ({"text": "hi", "voice": "en-uk"}, "voice", "en-us"),
        ({"text": "hi", "variant": "robot9000"}, "variant", "unknown voice variant"),
        ({"text": "hi", "rate": 50}, "rate", "greater than or equal to 80"),
        ({"text": "hi", "pitch": 100}, "pitch", "less than or equal to 99"),
        ({"text": "hi", "format": "flac"}, "format", "'wav', 'mp3' or 'ogg'"),
        ({"text": "hi", "speed": 2}, "speed", "Extra inputs are not permitted"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(inputs, field, message):
    with pytest.raises(InputValidationError) as info:
        gen.parse_inputs(inputs)
    assert any(path == field and message in text for path, text in info.value.problems), info.value.problems
    assert "local/tts" in str(info.value)
