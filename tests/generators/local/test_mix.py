"""local/mix: picture plus sound at the asked loudness, music ducked under speech, the asked length, fades."""

from __future__ import annotations

import av
import numpy as np
import pytest
from _audio_checks import (
    DELIVERY_TRUE_PEAK_DB,
    decode_audio,
    integrated_lufs,
    make_test_video,
    make_tone,
    oversampled_peak_db,
    r128,
    rms_db,
    sounding_span,
    tone_level_db,
)
from _media_checks import BT709, colour_tags

from generators.context import GeneratorContext
from generators.errors import InputValidationError
from generators.local.mix import AudioMix
from generators.local.tts import ESpeakTTS

gen = AudioMix()
MARKER_HZ = 13000.0  # eSpeak speaks at 22.05 kHz, so nothing of the voice reaches 13 kHz: the tone is all music
# A line whose peaks stand far above its loudness (a peak-to-loudness ratio near 19 dB): brought to -16 LUFS,
# its peaks must be limited, and the AAC encode after the limiter pushes them up again.
PEAKY_LINE = "And when night falls, the stars come out above the mountains."


@pytest.fixture
async def narration(ctx):
    return (await ESpeakTTS().run({"text": "Speech plays here, in the middle of the video."}, ctx)).primary


async def _mix(ctx, **inputs):
    result = await gen.run(inputs, ctx)
    return await ctx.resolve_artifact(result.primary), result


def _frames(path, *times: float) -> list[np.ndarray]:
    """The decoded picture at each time (the first frame at or after it)."""
    with av.open(str(path)) as container:
        frames = [(f.time, f.to_ndarray(format="gray").astype(np.int16)) for f in container.decode(video=0)]
    return [next(img for t, img in frames if t >= at - 1e-3) for at in times]


@pytest.mark.parametrize("target", [-16.0, -23.0])
async def test_output_has_picture_and_sound_at_the_target_loudness(ctx, narration, target):
    video = await make_test_video(ctx, 4.0)
    music = (await gen_music(ctx, 4.0)).primary
    path, result = await _mix(
        ctx, video=video, narration=narration, music=music, narration_offset=0.5, target_lufs=target
    )
    artifact = result.primary
    with av.open(str(path)) as container:
        streams = {s.type: s.codec_context.name for s in container.streams}
        size = (container.streams.video[0].codec_context.width, container.streams.video[0].codec_context.height)
    assert streams == {"video": "h264", "audio": "aac"} and size == (160, 120)
    assert artifact.has_audio and abs(artifact.duration - 4.0) <= 1 / 25 + 0.025
    audio = decode_audio(path)
    assert audio.rate == 48000 and audio.samples.shape[1] == 2
    assert integrated_lufs(audio) == pytest.approx(target, abs=1.0)
    assert np.abs(audio.samples).max() < 1.0, "the mix clips"
    assert set(artifact.parents) == {video.sha256, narration.sha256, music.sha256}
    assert result.compute_seconds > 0 and result.estimated_cost_usd == 0


async def gen_music(ctx, seconds):
    from generators.local.music import ProceduralMusic

    return await ProceduralMusic().run({"duration": seconds, "mood": "upbeat", "fade_in": 0, "fade_out": 0}, ctx)


# How long the picture runs on after the line moves the share of speech in the mix, hence its loudness
# before normalising, hence how far the peaks are pushed into the limiter.
@pytest.mark.parametrize(("bed", "tail"), [("none", 1.0), ("music", 2.0), ("kept", 2.0)])
async def test_true_peak_of_the_decoded_mix_is_at_most_minus_1_dbtp_at_minus_16_lufs(ctx, bed, tail):
    """EBU R128 / streaming delivery: ≤ -1 dBTP measured on the decoded file, at the asked loudness."""
    speech = (await ESpeakTTS().run({"text": PEAKY_LINE}, ctx)).primary
    video = await make_test_video(ctx, round(speech.duration + tail, 2))
    inputs: dict = {"video": video, "narration": speech, "narration_offset": 0.4}
    if bed != "none":
        inputs["music"] = (await gen_music(ctx, video.duration)).primary
    if bed == "kept":  # as the storyboard's last step: speech already in the picture's sound, music ducked under it
        _, spoken = await _mix(ctx, video=video, narration=speech, normalize=False, fade_in=0, fade_out=0)
        inputs = {"video": spoken.primary, "music": inputs["music"], "video_audio": "keep"}
    path, _ = await _mix(ctx, **inputs, target_lufs=-16.0)
    measured = r128(path)
    audio = decode_audio(path)
    assert measured.true_peak <= DELIVERY_TRUE_PEAK_DB, measured
    assert oversampled_peak_db(audio.samples) <= DELIVERY_TRUE_PEAK_DB + 0.05, "a finer interpolation disagrees"
    assert measured.integrated == pytest.approx(-16.0, abs=1.0), measured
    assert integrated_lufs(audio) == pytest.approx(-16.0, abs=1.0)


async def test_picture_carries_full_bt709_colour_tags(ctx, narration):
    path, _ = await _mix(ctx, video=await make_test_video(ctx, 2.0), narration=narration, fade_in=0, fade_out=0)
    assert colour_tags(path) == BT709


async def test_music_is_at_least_6_db_quieter_while_speech_plays(ctx, narration):
    video = await make_test_video(ctx, 8.0)
    tone = await make_tone(ctx, 8.0, MARKER_HZ)
    speech = decode_audio(await ctx.resolve_artifact(narration))
    start, end = sounding_span(speech.mono, speech.rate)
    offset = 3.0
    levels = {}
    for ducking in (True, False):
        path, _ = await _mix(
            ctx, video=video, narration=narration, music=tone, narration_offset=offset, ducking=ducking
        )
        out = decode_audio(path)
        levels[ducking] = {
            "before": tone_level_db(out.window(1.0, offset - 0.5), out.rate, MARKER_HZ),
            "during": tone_level_db(out.window(offset + start + 0.2, offset + end - 0.2), out.rate, MARKER_HZ),
            "after": tone_level_db(out.window(offset + end + 0.8, 7.0), out.rate, MARKER_HZ),
        }
    ducked, plain = levels[True], levels[False]
    assert ducked["before"] - ducked["during"] >= 6, ducked
    assert ducked["after"] - ducked["during"] >= 6, ducked
    assert ducked["before"] - ducked["during"] == pytest.approx(12, abs=1.5), "duck_db defaults to 12"
    # Without ducking the music holds its level: the drop above is the ducking, not the measurement.
    assert abs(plain["before"] - plain["during"]) < 1, plain


@pytest.mark.parametrize(
    ("length", "extend", "expected"),
    [
        ("shortest", "freeze", "speech_end"),
        ("video", "freeze", 2.0),
        ("longest", "freeze", "speech_end"),
        ("longest", "loop", "speech_end"),
    ],
)
async def test_length_policy(ctx, narration, length, extend, expected):
    video = await make_test_video(ctx, 2.0)
    path, result = await _mix(
        ctx,
        video=video,
        narration=narration,
        narration_offset=0.4,
        length=length,
        extend_video=extend,
        fade_in=0,
        fade_out=0,
    )
    speech_end = 0.4 + narration.duration
    if length == "shortest":
        speech_end = min(speech_end, 2.0)
    want = speech_end if expected == "speech_end" else expected
    assert abs(result.primary.duration - want) <= 1 / 25 + 0.025, (result.primary.duration, want)
    if length == "longest":
        last_real, late, later = _frames(path, 1.96, 2.5, 2.9)
        early, _ = _frames(await ctx.resolve_artifact(video), 0.5, 0.9)
        if extend == "freeze":
            assert np.abs(late - last_real).mean() < 1 and np.abs(later - last_real).mean() < 1, "not frozen"
        else:  # looped: at 2.5 s the picture is the video's 0.5 s again, far from its last frame
            assert np.abs(late - early).mean() < 2 and np.abs(late - last_real).mean() > 5, "not looped"
            assert np.abs(later - late).mean() > 2, "the loop does not move"


async def test_fades_and_determinism_and_progress(ctx, store):
    video = await make_test_video(ctx, 3.0)
    tone = await make_tone(ctx, 3.0, 440.0)
    inputs = {"video": video, "music": tone, "fade_in": 1.0, "fade_out": 1.0, "fade_picture": True}
    seen: list[float] = []
    async with GeneratorContext(store, progress=lambda f, _m: seen.append(f)) as watched:
        path, first = await _mix(watched, **inputs)
        audio = decode_audio(path)
        start_frame, middle_frame, end_frame = _frames(path, 0.0, 1.5, 2.96)
    _, again = await _mix(ctx, **inputs)
    assert first.primary.sha256 == again.primary.sha256, "same inputs gave different bytes"
    assert rms_db(audio.window(0, 0.05)) < rms_db(audio.window(1.2, 1.8)) - 20, "no audio fade-in"
    assert rms_db(audio.window(2.95, 3.0)) < rms_db(audio.window(1.2, 1.8)) - 20, "no audio fade-out"
    assert start_frame.mean() < 20 and end_frame.mean() < 20 and middle_frame.mean() > 60, "no picture fades"
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 3, seen


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "nothing to mix"),
        ({"music": "tone", "narration": "speech", "narration_offset": 5.0}, "starts after the result ends"),
        ({"music": "tone", "fade_in": 1.5, "fade_out": 1.5}, "shorten the fades"),
        ({"music": "tone", "duck_db": 3}, "greater than or equal to 6"),
        ({"music": "tone", "target_lufs": -5}, "less than or equal to -8"),
        ({"music": "tone", "length": "forever"}, "'shortest', 'video' or 'longest'"),
        ({"music": None, "narration": None}, "nothing to mix"),
    ],
)
async def test_bad_input_is_refused_with_a_clear_message(ctx, narration, extra, message):
    video = await make_test_video(ctx, 2.0)
    tone = await make_tone(ctx, 2.0, 440.0)
    by_name = {"tone": tone, "speech": narration}
    inputs = {"video": video, **{k: by_name.get(v, v) if isinstance(v, str) else v for k, v in extra.items()}}
    with pytest.raises(InputValidationError) as info:
        gen.parse_inputs(inputs)
    assert any(message in text for _, text in info.value.problems), info.value.problems


async def test_kept_video_sound_stays_and_music_ducks_under_it(ctx, narration):
    """video_audio=keep: a video that already carries speech keeps it, and the music ducks under it."""
    picture = await make_test_video(ctx, 8.0)
    offset = 3.0
    _, spoken = await _mix(
        ctx, video=picture, narration=narration, narration_offset=offset, normalize=False, fade_in=0, fade_out=0
    )
    speech = decode_audio(await ctx.resolve_artifact(narration))
    start, end = sounding_span(speech.mono, speech.rate)
    tone = await make_tone(ctx, 8.0, MARKER_HZ)
    kept_path, kept = await _mix(ctx, video=spoken.primary, music=tone, video_audio="keep")
    dropped_path, _ = await _mix(ctx, video=spoken.primary, music=tone, video_audio="drop")
    kept_audio, dropped_audio = decode_audio(kept_path), decode_audio(dropped_path)
    during = (offset + start + 0.2, offset + end - 0.2)
    # The voice's band (100–1900 Hz) holds speech only when kept; the marker tone sits far above it.
    voice_kept = tone_level_db(kept_audio.window(*during), kept_audio.rate, 1000.0, width=900.0)
    voice_dropped = tone_level_db(dropped_audio.window(*during), dropped_audio.rate, 1000.0, width=900.0)
    assert voice_kept - voice_dropped > 20
    before = tone_level_db(kept_audio.window(1.0, offset - 0.5), kept_audio.rate, MARKER_HZ)
    ducked = tone_level_db(kept_audio.window(*during), kept_audio.rate, MARKER_HZ)
    assert before - ducked >= 6
    assert spoken.primary.sha256 in kept.primary.parents


async def test_keeping_sound_of_a_silent_video_is_refused(ctx):
    video = await make_test_video(ctx, 2.0)
    with pytest.raises(InputValidationError, match="no audio track to keep"):
        gen.parse_inputs({"video": video, "video_audio": "keep"})
