"""A storyboard in small: stills → Ken Burns → narration → mix → concat → music → mix, checked as delivered.

Each step's own tests check it alone; this checks what the chain hands over: every sound it delivers is at
most -1 dBTP on the decoded file, the final one at -16 LUFS, every picture is tagged BT.709 throughout, and
a caption stays readable through the camera moves.
"""

from __future__ import annotations

import pytest
from _audio_checks import DELIVERY_TRUE_PEAK_DB, r128
from _media_checks import BT709, caption_pixels, colour_tags, decode_video, path_of

from generators.local.concat import ConcatGenerator
from generators.local.ken_burns import KenBurnsGenerator
from generators.local.mix import AudioMix
from generators.local.music import ProceduralMusic
from generators.local.procedural_image import ProceduralImageGenerator
from generators.local.tts import ESpeakTTS

SCENES = [  # the storyboard's own kind of scenes; the first caption is drawn into the still, the second after the move
    ("purple mountains under a starry night sky", "And when night falls, the stars come out.", "pan-right",
     {"caption_band": 0.15}, "Night falls"),
    ("a dark forest path at night", "Inland, a path leads through the trees.", "zoom-in",
     {"caption": "The forest path"}, None),
]  # fmt: skip


@pytest.mark.slow
async def test_a_small_storyboard_delivers_within_true_peak_and_colour_specs(ctx):
    mix = AudioMix()
    narrated = []
    for prompt, line, motion, caption_option, still_caption in SCENES:
        still_inputs = {"prompt": prompt, "size": "1024x576", "caption": still_caption}
        still = (await ProceduralImageGenerator().run(still_inputs, ctx)).primary
        speech = (await ESpeakTTS().run({"text": line}, ctx)).primary
        clip_inputs = {"image": still, "motion": motion, "duration": round(speech.duration + 1.2, 2)}
        clip_inputs |= {"resolution": "320x180", "fps": 24, **caption_option}
        clip = (await KenBurnsGenerator().run(clip_inputs, ctx)).primary
        frames = decode_video(await path_of(ctx, clip), keep_every=6).frames
        # A few dozen caption pixels at this size (test_ken_burns counts them at 640x360); a lost caption has 0.
        assert min(caption_pixels(f) for f in frames) > 10, f"the caption of {motion} is lost"
        mixed = await mix.run({"video": clip, "narration": speech, "narration_offset": 0.4, "normalize": False}, ctx)
        narrated.append(mixed.primary)
    cut = (await ConcatGenerator().run({"source_videos": narrated, "transition": "fade"}, ctx)).primary
    music = (await ProceduralMusic().run({"duration": cut.duration, "mood": "calm", "seed": 7}, ctx)).primary
    final_inputs = {"video": cut, "music": music, "video_audio": "keep", "target_lufs": -16}
    final = (await mix.run(final_inputs, ctx)).primary
    for artifact in (*narrated, cut, final):
        path = await path_of(ctx, artifact)
        measured = r128(path)
        assert measured.true_peak <= DELIVERY_TRUE_PEAK_DB, (artifact.generator, measured)
        assert colour_tags(path) == BT709, artifact.generator
    assert r128(await path_of(ctx, final)).integrated == pytest.approx(-16.0, abs=1.0)
