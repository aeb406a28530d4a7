"""local/music: the bed is music a person would recognise — in key, on tempo, many notes — at the exact length."""

from __future__ import annotations

import pytest
from _audio_checks import (
    beat_period,
    decode_audio,
    pitch_class_energy,
    rms_db,
    share_near_strongest,
    strong_peaks,
)

from generators.errors import InputValidationError
from generators.local._arrange import KEYS, SCALES
from generators.local.music import ProceduralMusic

gen = ProceduralMusic()


async def _play(ctx, **inputs):
    result = await gen.run(inputs, ctx)
    return decode_audio(await ctx.resolve_artifact(result.primary)), result


@pytest.mark.parametrize("mood", ["calm", "upbeat", "tense", "dreamy", "epic"])
async def test_every_mood_is_music_not_a_beep_and_lasts_exactly_as_asked(ctx, mood):
    audio, result = await _play(ctx, duration=6.3, mood=mood, seed=7)
    artifact = result.primary
    assert (artifact.format, artifact.channels, artifact.sample_rate) == ("wav", 2, 48000)
    assert abs(audio.duration - 6.3) <= 0.05 and abs(artifact.duration - 6.3) <= 0.05
    middle = audio.window(1.5, 4.0)
    assert rms_db(middle) > -30, "the music is (nearly) silent"
    # A sine beep has one spectral peak; chords over a bass line with an arpeggio have many.
    assert strong_peaks(audio.mono, audio.rate) >= 8
    assert share_near_strongest(middle, audio.rate) < 0.6, "one pitch carries most of the energy"
    # Both channels carry sound, and they differ: it is stereo, not mono copied twice.
    left, right = audio.samples[:, 0], audio.samples[:, 1]
    assert rms_db(left) > -35 and rms_db(right) > -35 and rms_db(left - right) > -40
    # Fades: it starts and ends in silence, not with a click.
    assert rms_db(audio.window(0, 0.02)) < -45 and rms_db(audio.mono[-480:]) < -45
    assert result.compute_seconds > 0 and result.estimated_cost_usd == 0


@pytest.mark.parametrize(("key", "scale"), [("C", "major"), ("F#", "minor"), ("Bb", "major")])
async def test_the_notes_belong_to_the_asked_key(ctx, key, scale):
    audio, _ = await _play(ctx, duration=8, mood="dreamy", key=key, scale=scale, seed=3)
    energy = pitch_class_energy(audio.mono, audio.rate)
    tonic = KEYS.index({"Bb": "A#"}.get(key, key))
    in_key = sum(energy[(tonic + step) % 12] for step in SCALES[scale])
    a_semitone_up = sum(energy[(tonic + 1 + step) % 12] for step in SCALES[scale])
    assert in_key > 0.85, f"only {in_key:.0%} of the tonal energy is in {key} {scale}"
    assert a_semitone_up < in_key - 0.3


@pytest.mark.parametrize("bpm", [90, 140])
async def test_the_beat_follows_the_tempo(ctx, bpm):
    audio, _ = await _play(ctx, duration=12, mood="upbeat", tempo=bpm, seed=2)
    assert beat_period(audio.window(4, 11), audio.rate) == pytest.approx(60 / bpm, abs=0.02)


async def test_same_seed_same_bytes_other_seed_other_music(ctx):
    first = (await gen.run({"duration": 4, "mood": "epic", "seed": 11}, ctx)).primary
    again = (await gen.run({"duration": 4, "mood": "epic", "seed": 11}, ctx)).primary
    other = (await gen.run({"duration": 4, "mood": "epic", "seed": 12}, ctx)).primary
    assert first.sha256 == again.sha256 != other.sha256


@pytest.mark.parametrize("fmt", ["mp3", "ogg"])
async def test_compressed_formats_keep_the_length_and_the_sound(ctx, fmt):
    first, result = await _play(ctx, duration=3.7, mood="upbeat", sample_rate=44100, format=fmt)
    again = (await gen.run({"duration": 3.7, "mood": "upbeat", "sample_rate": 44100, "format": fmt}, ctx)).primary
    assert (result.primary.format, first.rate) == (fmt, 44100)
    assert abs(first.duration - 3.7) <= 0.05 and abs(result.primary.duration - 3.7) <= 0.05
    assert rms_db(first.window(1, 3)) > -30
    assert again.sha256 == result.primary.sha256, f"{fmt} encoding is not deterministic"


@pytest.mark.parametrize(
    ("inputs", "field", "message"),
    [
        ({"duration": 0.5}, "duration", "greater than or equal to 1"),
        ({"duration": 601}, "duration", "less than or equal to 600"),
        ({"tempo": 30}, "tempo", "greater than or equal to 50"),
        ({"tempo": 250}, "tempo", "less than or equal to 200"),
        ({"key": "H"}, "key", "'C', 'C#'"),
        ({"scale": "dorian"}, "scale", "'major' or 'minor'"),
        ({"mood": "sad"}, "mood", "'calm', 'upbeat', 'tense', 'dreamy' or 'epic'"),
        ({"sample_rate": 22050}, "sample_rate", "44100 or 48000"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        ({"duration": 3, "fade_in": 2, "fade_out": 2}, "", "shorten the fades"),
        ({"format": "flac"}, "format", "'wav', 'mp3' or 'ogg'"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(inputs, field, message):
    with pytest.raises(InputValidationError) as info:
        gen.parse_inputs(inputs)
    assert any(path == field and message in text for path, text in info.value.problems), info.value.problems


def test_flat_key_names_are_accepted():
    assert gen.parse_inputs({"key": "eb"}).key.value == "D#"
    assert gen.parse_inputs({"key": "f#"}).key.value == "F#"
