"""Shared pieces of the local video generators: output sizes, frame rates, colour tags and timed ffmpeg runs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from enum import IntEnum, StrEnum
from fractions import Fraction

from ..context import GeneratorContext
from ..media import run_ffmpeg


class VideoResolution(StrEnum):
    """Output frame sizes. The small ones are for previews and tests; every size is even, as yuv420p needs."""

    R320X180 = "320x180"
    R640X360 = "640x360"
    R854X480 = "854x480"
    R1280X720 = "1280x720"
    R1920X1080 = "1920x1080"
    R180X320 = "180x320"
    R360X640 = "360x640"
    R720X1280 = "720x1280"
    R1080X1920 = "1080x1920"
    R720X720 = "720x720"
    R1080X1080 = "1080x1080"

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.value.split("x")
        return int(width), int(height)


class FrameRate(IntEnum):
    FPS24 = 24
    FPS25 = 25
    FPS30 = 30
    FPS60 = 60


# The still images we make are sRGB; tagging the stream as BT.709 (and converting with that matrix)
# keeps browsers and players from shifting colours with a BT.601 guess.
BT709_TAGS = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]
# Options of a `scale` filter: convert to the BT.709 matrix and limited range. An untagged source is taken
# as BT.601, which is how ffmpeg itself turns RGB into untagged YUV.
TO_BT709 = "out_color_matrix=bt709:out_range=tv"
# The last filter before the encoder. ffmpeg 7 and later encode the colour properties the frames carry and
# let them override -color_primaries/-color_trc (the frames know only the matrix `scale` gave them), which
# left primaries and transfer "unknown"; setting all four on the frames tags the stream on any version.
TAG_BT709 = "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv"


def even(value: float) -> int:
    """The nearest even integer ≥ 2: libx264 with yuv420p refuses odd frame sizes."""
    return max(2, int(round(value / 2)) * 2)


def rate_fraction(fps: float) -> Fraction:
    """A frame rate as an exact fraction: 29.97… becomes 30000/1001, 25.0 stays 25."""
    return Fraction(fps).limit_denominator(1001)


async def run_timed_ffmpeg(context: GeneratorContext, args: Sequence[str], *, duration: float, what: str) -> None:
    """Run ffmpeg with progress forwarded to the context, recording the wall seconds it took as compute."""
    started = time.perf_counter()
    try:
        await run_ffmpeg(args, duration=duration, progress=context.publish_progress, what=what)
    finally:
        context.record_compute_seconds(time.perf_counter() - started)
