"""Helpers for the local generators' tests: make small real inputs with ffmpeg and decode outputs with PyAV/Pillow."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from generators.artifacts import Artifact, AudioArtifact, ImageArtifact, VideoArtifact
from generators.context import GeneratorContext
from generators.media import ffmpeg_exe


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


# What a loud clip from elsewhere sounds like (a hosted video, a loud master): stereo pink noise at about
# -8 LUFS, its samples limited to full scale, so its AAC encode peaks above 0 dBTP. (pan, not aformat: a
# mono source upmixed by aformat loses 3 dB.)
LOUD = (
    "anoisesrc=color=pink:amplitude=1.0:seed=7:sample_rate=48000:d={seconds},"
    "volume=6dB,alimiter=limit=1:level=false:latency=true,pan=stereo|c0=c0|c1=c0"
)


async def make_video(
    ctx: GeneratorContext,
    width: int,
    height: int,
    fps: int,
    seconds: float,
    *,
    audio: bool,
    pattern: str = "testsrc2",
    sound: str = "sine=frequency=440:sample_rate=48000:d={seconds}",
) -> VideoArtifact:
    """A moving test pattern (and, when `audio`, a 440 Hz tone or the lavfi `sound`), stored in the context's store."""
    out = ctx.temp_path(".mp4")
    inputs = ["-f", "lavfi", "-i", f"{pattern}=s={width}x{height}:r={fps}:d={seconds}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", sound.format(seconds=seconds)]
    codecs = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    codecs += ["-c:a", "aac", "-shortest"] if audio else ["-an"]
    _ffmpeg(*inputs, *codecs, str(out))
    return await ctx.store_video_result(out)


async def make_tone(ctx: GeneratorContext, seconds: float, frequency: int = 220) -> AudioArtifact:
    out = ctx.temp_path(".wav")
    _ffmpeg("-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=44100:d={seconds}", str(out))
    return await ctx.store_audio_result(out)


async def make_image(ctx: GeneratorContext, width: int, height: int, *, fmt: str = "png") -> ImageArtifact:
    """A detailed still (smooth gradients plus fine stripes), so any motion over it shows in every frame."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 127 + 120 * np.sin(xs / 7.0) * np.cos(ys / 11.0)
    g = 255 * xs / width
    b = 255 * ys / height
    pixels = np.stack([r, g, b], axis=-1).clip(0, 255).astype(np.uint8)
    out = ctx.temp_path(f".{fmt}")
    Image.fromarray(pixels).save(out)
    return await ctx.store_image_result(out)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def path_of(ctx: GeneratorContext, artifact: Artifact) -> Path:
    return await ctx.resolve_artifact(artifact)


@dataclass
class DecodedVideo:
    width: int
    height: int
    fps: float
    duration: float  # container duration, seconds
    pix_fmt: str
    codec: str
    frames: list[np.ndarray]  # RGB, int16 so differences don't wrap
    audio_streams: int
    audio_rms: float  # of the first audio stream; 0 when there is none


def decode_video(path: Path, *, keep_every: int = 1) -> DecodedVideo:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        frames = [
            f.to_ndarray(format="rgb24").astype(np.int16)
            for i, f in enumerate(container.decode(stream))
            if i % keep_every == 0
        ]
        info = DecodedVideo(
            width=ctx.width,
            height=ctx.height,
            fps=float(stream.average_rate),
            duration=container.duration / 1_000_000,
            pix_fmt=ctx.pix_fmt,
            codec=ctx.name,
            frames=frames,
            audio_streams=len(container.streams.audio),
            audio_rms=0.0,
        )
    if info.audio_streams:
        with av.open(str(path)) as container:
            samples = [f.to_ndarray().astype(np.float64).ravel() for f in container.decode(audio=0)]
        info.audio_rms = float(np.sqrt(np.mean(np.concatenate(samples) ** 2)))
    return info


def frame_diffs(frames: list[np.ndarray]) -> list[float]:
    """Mean absolute difference (0–255) between each frame and the next."""
    return [float(np.abs(b - a).mean()) for a, b in zip(frames, frames[1:], strict=False)]


# PyAV reports colour tags as FFmpeg's enum values; these are the names ffprobe gives them.
_PRIMARIES = {1: "bt709", 2: "unknown", 5: "bt470bg", 6: "smpte170m", 9: "bt2020"}
_TRANSFERS = {1: "bt709", 2: "unknown", 6: "smpte170m", 13: "iec61966-2-1", 14: "bt2020-10"}
_MATRICES = {0: "gbr", 1: "bt709", 2: "unknown", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"}


def colour_tags(path: Path) -> dict[str, str]:
    """color_primaries, color_trc and colorspace of the first video stream, read by ffprobe (or PyAV without it)."""
    if ffprobe := shutil.which("ffprobe"):
        shown = subprocess.run(
            [ffprobe, "-v", "error", "-select_streams", "v:0", "-of", "json"]
            + ["-show_entries", "stream=color_primaries,color_transfer,color_space", str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        stream = json.loads(shown)["streams"][0]  # ffprobe leaves out a tag that is unspecified
        return {
            "color_primaries": stream.get("color_primaries", "unknown"),
            "color_trc": stream.get("color_transfer", "unknown"),
            "colorspace": stream.get("color_space", "unknown"),
        }
    with av.open(str(path)) as container:
        codec = container.streams.video[0].codec_context
        primaries, trc, matrix = int(codec.color_primaries), int(codec.color_trc), int(codec.colorspace)
    return {
        "color_primaries": _PRIMARIES.get(primaries, str(primaries)),
        "color_trc": _TRANSFERS.get(trc, str(trc)),
        "colorspace": _MATRICES.get(matrix, str(matrix)),
    }


BT709 = {"color_primaries": "bt709", "color_trc": "bt709", "colorspace": "bt709"}

# local/procedural-image writes its caption in this near-white (and a black shadow) on a dark band.
CAPTION_RGB = np.array([250, 248, 240])


def caption_pixels(frame: np.ndarray, band: float = 0.2) -> int:
    """How many pixels of the bottom `band` of an RGB frame have the caption's colour (within video's blur)."""
    bottom = frame[int(frame.shape[0] * (1 - band)) :]
    return int((np.abs(bottom - CAPTION_RGB) < 45).all(axis=-1).sum())
