"""local/concat: the joined video lasts sum − overlaps, is normalised to one size and rate, and carries the sound."""

from __future__ import annotations

import av
import numpy as np
import pytest
from _audio_checks import DELIVERY_TRUE_PEAK_DB, decode_audio, oversampled_peak_db, r128
from _media_checks import BT709, LOUD, colour_tags, decode_video, make_tone, make_video, path_of

from generators.errors import InputValidationError, MediaProcessingError
from generators.local.concat import ConcatGenerator

gen = ConcatGenerator()


@pytest.fixture
async def clips(ctx):
    """Three mismatched clips: 16:9 at 24 fps with sound, square at 30 fps silent, 4:3 at 25 fps with sound."""
    return [
        await make_video(ctx, 320, 180, 24, 1.0, audio=True),
        await make_video(ctx, 240, 240, 30, 1.0, audio=False, pattern="smptebars"),
        await make_video(ctx, 160, 120, 25, 1.5, audio=True, pattern="rgbtestsrc"),
    ]


async def _join(ctx, clips, **inputs):
    result = await gen.run({"source_videos": clips, **inputs}, ctx)
    return decode_video(await path_of(ctx, result.primary)), result.primary


@pytest.mark.parametrize("transition", ["fade", "wipeleft", "dissolve"])
async def test_transitions_overlap_clips_and_mismatched_inputs_are_normalised(ctx, clips, transition):
    video, artifact = await _join(ctx, clips, transition=transition, transition_duration=0.25)
    expected = 1.0 + 1.0 + 1.5 - 2 * 0.25
    assert (video.width, video.height, video.fps) == (320, 180, 24.0)  # the first clip's
    assert abs(video.duration - expected) <= 1 / 24
    assert len(video.frames) == round(expected * 24)
    assert (artifact.width, artifact.height, artifact.has_audio) == (320, 180, True)
    # The square clip plays alone from 1.0 s to 1.5 s, letterboxed to the centre of the 16:9 frame.
    square = video.frames[30]
    assert square[:, :30].max() < 30 and square[:, -30:].max() < 30, "no black bars beside the square clip"
    assert square[:, 100:220].mean() > 60, "the square clip is missing"
    assert min(f.mean() for f in video.frames) > 15, "a black frame inside the joined video"
    assert video.audio_streams == 1 and video.audio_rms > 0.05


async def test_cut_with_music_lasts_the_sum_and_carries_the_music(ctx):
    silent = [
        await make_video(ctx, 320, 180, 24, 1.0, audio=False),
        await make_video(ctx, 320, 180, 24, 0.5, audio=False, pattern="smptebars"),
    ]
    music = await make_tone(ctx, 0.6)  # shorter than the video: it loops
    video, artifact = await _join(ctx, silent, transition="cut", background_music=music, music_volume_db=0)
    assert abs(video.duration - 1.5) <= 1 / 24
    assert len(video.frames) == 36
    assert artifact.has_audio and video.audio_streams == 1
    assert video.audio_rms > 0.04, "the music is not audible"  # lavfi sine: amplitude 1/8, RMS 0.088
    assert artifact.parents == (silent[0].sha256, silent[1].sha256, music.sha256)


async def test_explicit_resolution_and_fps_and_no_audio_when_nothing_has_sound(ctx):
    silent = [
        await make_video(ctx, 320, 180, 24, 1.0, audio=False),
        await make_video(ctx, 160, 120, 25, 1.0, audio=False, pattern="rgbtestsrc"),
    ]
    video, artifact = await _join(
        ctx, silent, transition="slideleft", transition_duration=0.5, resolution="180x320", fps=30
    )
    assert (video.width, video.height, video.fps) == (180, 320, 30.0)
    assert abs(video.duration - 1.5) <= 1 / 30 and len(video.frames) == 45
    assert video.audio_streams == 0 and not artifact.has_audio
    # Wide clips in a tall frame: black above and below the picture.
    frame = video.frames[5]
    assert frame[:60].max() < 30 and frame[-60:].max() < 30 and frame[140:180].mean() > 60


@pytest.mark.parametrize("music", [False, True])
async def test_true_peak_of_loud_clips_joined_is_at_most_minus_1_dbtp(ctx, music):
    """Clips whose sound reaches full scale (and music summed on top) are delivered at ≤ -1 dBTP."""
    loud = [
        await make_video(ctx, 320, 180, 24, 1.0, audio=True, sound=LOUD),
        await make_video(ctx, 320, 180, 24, 1.0, audio=True, pattern="smptebars", sound=LOUD),
    ]
    extra = {"background_music": await make_tone(ctx, 1.5), "music_volume_db": 0} if music else {}
    _, artifact = await _join(ctx, loud, transition="fade", transition_duration=0.25, **extra)
    path = await path_of(ctx, artifact)
    measured, clip = r128(path), r128(await path_of(ctx, loud[0]))
    assert clip.true_peak > DELIVERY_TRUE_PEAK_DB, "the input is not loud enough to test anything"
    assert measured.true_peak <= DELIVERY_TRUE_PEAK_DB, measured
    assert oversampled_peak_db(decode_audio(path).samples) <= DELIVERY_TRUE_PEAK_DB + 0.05
    # A limiter, not a fader: the peaks come down further than the loudness does.
    assert clip.integrated - measured.integrated < clip.true_peak - measured.true_peak - 0.3, (measured, clip)


@pytest.mark.parametrize("with_sound", [False, True])
async def test_output_carries_full_bt709_colour_tags(ctx, clips, with_sound):
    sources = clips[:2] if with_sound else [clips[1], clips[1]]
    _, artifact = await _join(ctx, sources, transition="cut")
    assert artifact.has_audio is with_sound
    assert colour_tags(await path_of(ctx, artifact)) == BT709


async def test_same_inputs_give_identical_bytes(ctx, clips):
    first = (await gen.run({"source_videos": clips[:2], "transition": "fade"}, ctx)).primary
    second = (await gen.run({"source_videos": clips[:2], "transition": "fade"}, ctx)).primary
    assert first.sha256 == second.sha256


async def test_clip_sound_crossfades_rather_than_cutting(ctx, clips):
    result = await gen.run({"source_videos": clips[:2], "transition": "fade", "transition_duration": 0.5}, ctx)
    with av.open(str(await path_of(ctx, result.primary))) as container:
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])

    def rms(start: float, end: float) -> float:
        return float(np.sqrt(np.mean(samples[int(start * 48000) : int(end * 48000)] ** 2)))

    # The tone alone, then fading out across the 0.5 s overlap (0.5–1.0 s), then the silent clip.
    assert rms(0.1, 0.4) > 0.06  # lavfi sine: amplitude 1/8, RMS 0.088
    assert rms(0.1, 0.4) > rms(0.55, 0.7) > rms(0.8, 0.95) > rms(1.1, 1.4)
    assert rms(1.1, 1.4) < 0.01


async def test_a_clip_damaged_in_the_store_fails_with_the_ffmpeg_command_and_its_complaint(ctx, clips):
    stored = await path_of(ctx, clips[1])
    stored.write_bytes(b"\x00" * 4096)  # overwritten on disk after it was stored
    with pytest.raises(MediaProcessingError) as caught:
        await gen.run({"source_videos": clips, "transition": "fade"}, ctx)
    error = caught.value
    assert "ffmpeg" in error.command[0] and "-filter_complex" in error.command and str(stored) in error.command
    assert error.stderr_tail and "ffmpeg said" in str(error)


@pytest.mark.parametrize(
    ("inputs", "field", "words"),
    [
        ({"count": 1}, "source_videos", "at least 2 items"),
        ({"count": 21}, "source_videos", "at most 20 items"),
        ({"transition_duration": 1.0}, "(inputs)", "too long for clip 1, which lasts 1 s"),
        ({"transition_duration": 0.6, "count": 3}, "(inputs)", "too long for clip 2, which lasts 1 s (a middle"),
        ({"transition": "spin"}, "transition", "'cut'"),
        ({"transition_duration": 0}, "transition_duration", "greater than or equal to 0.04"),
        ({"music_volume_db": 20}, "music_volume_db", "less than or equal to 6"),
        ({"fps": 50}, "fps", "24, 25, 30 or 60"),
        ({"resolution": "100x100"}, "resolution", "'320x180'"),
    ],
)
def test_bad_inputs_are_rejected_with_a_clear_message(inputs, field, words):
    inputs = dict(inputs)
    video = {
        "kind": "video",
        "sha256": "0" * 64,
        "storage_url": "file:///nowhere.mp4",
        "format": "mp4",
        "size_bytes": 1,
        "width": 320,
        "height": 180,
        "duration": 1.0,
        "fps": 24.0,
    }
    raw = {"source_videos": [video] * inputs.pop("count", 2), **inputs}
    with pytest.raises(InputValidationError) as caught:
        gen.parse_inputs(raw)
    message = str(caught.value)
    assert f"- {field}:" in message and words in message, message


def test_cut_ignores_transition_length():
    video = {
        "kind": "video",
        "sha256": "0" * 64,
        "storage_url": "file:///nowhere.mp4",
        "format": "mp4",
        "size_bytes": 1,
        "width": 320,
        "height": 180,
        "duration": 0.5,
        "fps": 24.0,
    }
    assert gen.parse_inputs({"source_videos": [video, video], "transition": "cut", "transition_duration": 2})
