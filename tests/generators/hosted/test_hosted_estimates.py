"""Each hosted generator's estimate against a price worked out by hand from the provider's published pricing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from generators.artifacts import AudioArtifact, ImageArtifact, VideoArtifact
from tests.fakes.fixtures import hosted

IMAGE_1000x800 = ImageArtifact(
    sha256="a" * 64, storage_url="file:///in.png", format="png", size_bytes=1, width=1000, height=800
)
AUDIO_60S = AudioArtifact(
    sha256="b" * 64,
    storage_url="file:///in.mp3",
    format="mp3",
    size_bytes=1,
    duration=60.0,
    sample_rate=44100,
    channels=1,
)
AUDIO_90S = AUDIO_60S.model_copy(update={"duration": 90.0})
AUDIO_45S = AUDIO_60S.model_copy(update={"duration": 45.0})
VIDEO_30S = VideoArtifact(
    sha256="c" * 64,
    storage_url="file:///in.mp4",
    format="mp4",
    size_bytes=1,
    width=640,
    height=360,
    duration=30.0,
    fps=24.0,
)

CASES = [
    # fal: $0.025 per megapixel, each image rounded up to whole megapixels of 1024x1024 pixels.
    ("fal/flux-dev", {"prompt": "x"}, "0.025"),  # landscape_4_3 = 1024x768 -> 1 MP
    ("fal/flux-dev", {"prompt": "x", "image_size": "square_hd", "num_images": 3}, "0.075"),
    ("fal/flux-dev", {"prompt": "x", "image_size": {"width": 1500, "height": 1500}}, "0.075"),  # 2.15 -> 3 MP
    ("fal/flux-schnell", {"prompt": "x", "image_size": "portrait_16_9", "num_images": 4}, "0.012"),  # 4 x $0.003
    # 1000x800 upscaled 2x = 2000x1600 = 3.05 -> 4 MP at $0.03
    ("fal/clarity-upscaler", {"image_url": IMAGE_1000x800}, "0.12"),
    ("fal/kling-2.1-image-to-video", {"prompt": "x", "image_url": IMAGE_1000x800}, "0.28"),  # $0.28 for 5 s
    ("fal/kling-2.1-image-to-video", {"prompt": "x", "image_url": IMAGE_1000x800, "duration": "10"}, "0.56"),
    ("fal/kling-2.5-text-to-video", {"prompt": "x", "duration": "10"}, "0.70"),  # $0.35 + 5 x $0.07
    # Replicate official models: per output.
    ("replicate/flux-schnell", {"prompt": "x", "num_outputs": 3}, "0.009"),
    ("replicate/minimax-video-01", {"prompt": "x"}, "0.50"),
    ("replicate/flux-1.1-pro", {"prompt": "x"}, "0.04"),  # per image
    # Replicate community models: typical seconds x hardware $/s (T4 $0.000225, A100 80GB $0.0014).
    ("replicate/real-esrgan", {"image": IMAGE_1000x800, "scale": 2}, "0.00081"),  # (2 + 0.5 x 3.2 MP) s on T4
    ("replicate/musicgen", {"prompt": "x", "duration": 20}, "0.042"),  # (10 + 20) s on A100
    ("replicate/whisper", {"audio": AUDIO_60S}, "0.00315"),  # (5 + 0.15 x 60) s on T4
    # gpt-image-1: 1584 output tokens per medium 1024x1536 image at $40/M, + 10 prompt tokens at $5/M.
    ("openai/gpt-image-1", {"prompt": "a" * 40, "quality": "medium", "size": "1024x1536", "n": 2}, "0.12677"),
    # auto quality and size are estimated at the dearest choice: high 1024x1536 = 6240 tokens.
    ("openai/gpt-image-1", {"prompt": "a" * 8}, "0.24961"),
    # 272 output tokens + 3 prompt tokens + 3 input images x 765 tokens at $10/M.
    (
        "openai/gpt-image-1-edit",
        {
            "prompt": "a" * 12,
            "quality": "low",
            "size": "1024x1024",
            "image": [IMAGE_1000x800, IMAGE_1000x800],
            "mask": IMAGE_1000x800,
        },
        "0.033845",
    ),
    ("openai/tts-1", {"input": "a" * 1000}, "0.015"),  # $15 per million characters
    ("openai/tts-1-hd", {"input": "a" * 1000}, "0.03"),
    ("openai/whisper-1", {"file": AUDIO_90S}, "0.009"),  # 1.5 min x $0.006
    ("elevenlabs/multilingual-v2", {"text": "a" * 2500}, "0.25"),  # $0.10 per 1,000 characters
    ("elevenlabs/flash-v2.5", {"text": "a" * 2500}, "0.125"),  # $0.05 per 1,000 characters
    ("elevenlabs/turbo-v2.5", {"text": "a" * 2500}, "0.125"),
    ("elevenlabs/v3", {"text": "a" * 2500}, "0.25"),  # $0.10 per 1,000 characters
    # 25 credits per second of a set duration, 100 for an automatic one, at $0.10 per 1,000 credits.
    ("elevenlabs/sound-effects", {"text": "thunder", "duration_seconds": 4}, "0.01"),
    ("elevenlabs/sound-effects", {"text": "thunder"}, "0.01"),
    ("elevenlabs/sound-effects", {"text": "thunder", "duration_seconds": 2.5}, "0.0063"),  # 62.5 -> 63 credits
    # gpt-image-2: OpenAI's per-image price (high $0.211, medium $0.053, low $0.006) + prompt tokens at $5/M.
    ("openai/gpt-image-2", {"prompt": "a" * 40, "quality": "medium", "n": 2}, "0.10605"),  # 0.106 + 10 tokens
    ("openai/gpt-image-2", {"prompt": "a" * 8}, "0.21101"),  # auto is estimated as high
    # + two input images at gpt-image-1's 765 tokens each, $8/M: 0.006 + 0.000015 + 0.01224
    ("openai/gpt-image-2-edit", {"prompt": "a" * 12, "quality": "low", "image": [IMAGE_1000x800] * 2}, "0.018255"),
    ("openai/gpt-4o-mini-tts", {"input": "a" * 1800}, "0.03"),  # 2 estimated minutes at $0.015
    ("openai/gpt-4o-transcribe", {"file": AUDIO_90S}, "0.009"),  # 1.5 min x $0.006
    # fal pages, per second of video: Veo 3 $0.40 with audio / $0.20 without (default 8 s with audio).
    ("fal/veo-3", {"prompt": "x"}, "3.20"),
    ("fal/veo-3", {"prompt": "x", "duration": "4s", "generate_audio": False}, "0.80"),
    # Veo 3.1: 720p/1080p as Veo 3; 4k $0.60/s with audio.
    ("fal/veo-3.1", {"prompt": "x", "resolution": "4k", "duration": "6s"}, "3.60"),
    ("fal/veo-3.1", {"prompt": "x", "resolution": "1080p", "generate_audio": False}, "1.60"),
    ("fal/sora-2", {"prompt": "x", "duration": 8}, "0.80"),  # $0.10/s
    ("fal/kling-2.1-master-text-to-video", {"prompt": "x", "duration": "10"}, "2.80"),  # $1.40 per 5 s
    ("fal/kling-2.1-pro-image-to-video", {"prompt": "x", "image_url": IMAGE_1000x800}, "0.49"),  # 5 s
    ("fal/hailuo-02-image-to-video", {"prompt": "x", "image_url": IMAGE_1000x800}, "0.27"),  # 6 s at 768P
    # $3 per minute of video; the output is as long as the longer input at most: 45 s -> 0.75 min.
    ("fal/sync-lipsync-2", {"video_url": VIDEO_30S, "audio_url": AUDIO_45S}, "2.25"),
    ("fal/stable-audio-2.5", {"prompt": "x"}, "0.20"),  # per audio
    # Read on fal's own pages on 2026-12-04 (fal.ai/models/<endpoint>/llms.txt and fal.ai/docs/model-api-reference).
    ("fal/flux-kontext-pro", {"prompt": "x", "image_url": IMAGE_1000x800, "num_images": 3}, "0.12"),  # $0.04 each
    ("fal/flux-pro-ultra", {"prompt": "x", "num_images": 2}, "0.12"),  # $0.06 per image
    # $0.08 per video second at 720p (the default), seconds counted at 16 frames: 81 frames = 5.0625 s.
    ("fal/wan-2.2-video-to-video", {"prompt": "x", "video_url": VIDEO_30S}, "0.405"),
    (
        "fal/wan-2.2-video-to-video",
        {"prompt": "x", "video_url": VIDEO_30S, "num_frames": 161, "resolution": "480p"},
        "0.4025",
    ),
    (
        "fal/wan-2.2-video-to-video",
        {"prompt": "x", "video_url": VIDEO_30S, "num_frames": 32, "resolution": "580p"},
        "0.12",
    ),
    ("fal/chatterbox-hd", {"text": "a" * 2500}, "0.10"),  # $0.04 per 1,000 characters
    # Read on fal's own pages on 2026-12-04 (catalogue3).
    ("fal/elevenlabs-scribe", {"audio_url": AUDIO_90S}, "0.045"),  # 1.5 min x $0.03
    ("fal/fashn-tryon", {"model_image": IMAGE_1000x800, "garment_image": IMAGE_1000x800}, "0.075"),
    ("fal/fashn-tryon", {"model_image": IMAGE_1000x800, "garment_image": IMAGE_1000x800, "num_samples": 2}, "0.15"),
    ("fal/cassette-music", {"prompt": "x", "duration": 90}, "0.03"),  # 1.5 output minutes x $0.02
    ("fal/stable-avatar", {"prompt": "x", "image_url": IMAGE_1000x800, "audio_url": AUDIO_45S}, "4.5"),  # 45 s x $0.10
    (
        "fal/stable-avatar",
        {"prompt": "x", "image_url": IMAGE_1000x800, "audio_url": AUDIO_45S.model_copy(update={"duration": 2.0})},
        "0.40",
    ),  # at least 4 seconds
    # LatentSync: $0.2 up to 40 s of output, then $0.005 per second; the output is as long as the longer input.
    ("fal/latentsync", {"video_url": VIDEO_30S, "audio_url": AUDIO_45S}, "0.225"),  # 45 s x $0.005
    ("fal/latentsync", {"video_url": VIDEO_30S, "audio_url": AUDIO_45S.model_copy(update={"duration": 12.0})}, "0.20"),
    ("fal/sora-2-image-to-video", {"prompt": "x", "image_url": IMAGE_1000x800, "duration": 12}, "1.20"),  # $0.1/s
]


@pytest.mark.parametrize(("name", "inputs", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
async def test_estimate_matches_the_hand_computed_price(name, inputs, expected):
    gen = hosted(name)
    assert await gen.estimate_cost(gen.parse_inputs(inputs)) == Decimal(expected)


def test_every_priced_hosted_generator_has_a_hand_checked_estimate():
    from generators.hosted import HOSTED_GENERATORS

    assert {g.name for g in HOSTED_GENERATORS if g.priced} == {name for name, _, _ in CASES}


async def test_an_entry_without_a_published_price_is_unpriced_and_estimates_nothing():
    from generators.hosted import HOSTED_GENERATORS

    unpriced = [g for g in HOSTED_GENERATORS if not g.priced]
    assert unpriced and all(g.spec.pricing.unknown and "unknown" in g.cost_model for g in unpriced)
    gen = hosted("fal/nano-banana")
    assert await gen.estimate_cost(gen.parse_inputs({"prompt": "x"})) == Decimal(0)
