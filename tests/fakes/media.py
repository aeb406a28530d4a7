"""Real media for the fake providers: Pillow images, ffmpeg video and audio, cached by their parameters."""

from __future__ import annotations

import io
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw

from generators.media import ffmpeg_exe

AUDIO_CODECS = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"],
    "wav": ["-c:a", "pcm_s16le", "-f", "wav"],
    "opus": ["-c:a", "libopus", "-b:a", "64k", "-f", "ogg"],
    "aac": ["-c:a", "aac", "-f", "adts"],
    "flac": ["-c:a", "flac", "-f", "flac"],
}
IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
}


def variant_of(text: str) -> int:
    """A small stable number from a prompt, so different prompts give different (but cacheable) media."""
    return sum(text.encode()) % 12


@lru_cache(maxsize=256)
def image(width: int, height: int, fmt: str = "png", variant: int = 0) -> bytes:
    """A gradient with a disc: never uniform, so 'not blank' checks on decoded output mean something."""
    hue = variant * 21
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    tint = Image.new("RGB", (width, height), ((hue * 7) % 256, (hue * 3 + 80) % 256, (255 - hue) % 256))
    img = Image.blend(img, tint, 0.5)
    r = min(width, height) // 4
    ImageDraw.Draw(img).ellipse((width // 2 - r, height // 2 - r, width // 2 + r, height // 2 + r), fill=(250, 240, 40))
    out = io.BytesIO()
    img.save(out, IMAGE_FORMATS[fmt])
    return out.getvalue()


@lru_cache(maxsize=64)
def video(width: int, height: int, seconds: float, fps: int = 24, variant: int = 0) -> bytes:
    """An H.264 MP4 of ffmpeg's moving test pattern, `seconds` long."""
    return _ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}",
            "-vf",
            f"hue=h={variant * 30}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "mp4",
        ],
        suffix=".mp4",
    )


@lru_cache(maxsize=64)
def audio(seconds: float, fmt: str = "mp3", sample_rate: int = 44100, channels: int = 1, variant: int = 0) -> bytes:
    """A sine tone (pitch by variant), `seconds` long, in `fmt`."""
    layout = "stereo" if channels == 2 else "mono"
    sample_rate = 48000 if fmt == "opus" else sample_rate  # libopus encodes 48 kHz only
    return _ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={220 + 40 * variant}:sample_rate={sample_rate}:duration={seconds}",
            "-ac",
            str(channels),
            "-channel_layout",
            layout,
            "-ar",
            str(sample_rate),
            *AUDIO_CODECS[fmt],
        ],
        suffix=f".{fmt}",
    )


def _ffmpeg(args: list[str], suffix: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="fake-media-") as tmp:
        out = Path(tmp) / f"out{suffix}"
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args, str(out)]
        subprocess.run(cmd, check=True, capture_output=True)
        return out.read_bytes()


def probe_image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def probe_duration(data: bytes) -> float:
    import av

    with av.open(io.BytesIO(data)) as container:
        return container.duration / 1_000_000 if container.duration else 0.0
