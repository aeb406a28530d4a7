"""Small inline previews of media outputs for the Prefect UI: thumbnails, animated clips, waveforms."""

from __future__ import annotations

import asyncio
import base64
import html
import io
import tempfile
from pathlib import Path
from typing import Any

from generators.artifacts import Artifact, AudioArtifact, ImageArtifact, TextArtifact, VideoArtifact
from generators.base import GeneratorResult
from generators.context import GeneratorContext
from generators.errors import BoardflowError
from generators.media import run_ffmpeg
from generators.storage import ArtifactStore

THUMB_WIDTH = 240


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_thumbnail(path: Path, width: int = THUMB_WIDTH) -> str:
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((width, width * 4))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=72)
    return _data_uri("image/jpeg", buf.getvalue())


async def video_preview(path: Path, duration: float, width: int = THUMB_WIDTH, frames: int = 10) -> str:
    """An animated WebP of `frames` frames spread over the clip, looping."""
    with tempfile.TemporaryDirectory(prefix="boardflow-preview-") as tmp:
        out = Path(tmp) / "preview.webp"
        rate = max(frames / max(duration, 0.1), 0.1)
        await run_ffmpeg(
            [
                "-i",
                str(path),
                "-vf",
                f"fps={rate:.4f},scale={width}:-2:flags=bilinear",
                "-frames:v",
                str(frames),
                "-loop",
                "0",
                "-c:v",
                "libwebp_anim",
                "-quality",
                "45",
                "-an",
                str(out),
            ],
            what="video preview",
        )
        return _data_uri("image/webp", out.read_bytes())


def waveform(path: Path, width: int = 360, height: int = 64) -> str:
    """A PNG waveform (peak envelope) of the audio file."""
    import av
    import numpy as np
    from PIL import Image, ImageDraw

    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            data = frame.to_ndarray()
            chunks.append(np.abs(data.astype(np.float32)).max(axis=0) if data.ndim > 1 else np.abs(data))
    samples = np.concatenate(chunks) if chunks else np.zeros(1, dtype=np.float32)
    if samples.dtype.kind in "iu":
        samples = samples / float(np.iinfo(samples.dtype).max)
    peaks = np.array([seg.max() if len(seg) else 0.0 for seg in np.array_split(samples, width)])
    peaks = peaks / max(float(peaks.max()), 1e-9)
    img = Image.new("RGB", (width, height), (24, 26, 33))
    draw = ImageDraw.Draw(img)
    mid = height / 2
    for x, p in enumerate(peaks):
        draw.line([(x, mid - p * (mid - 2)), (x, mid + p * (mid - 2))], fill=(96, 165, 250))
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return _data_uri("image/png", buf.getvalue())


async def preview_markdown(artifact: Artifact, store: ArtifactStore, ctx: GeneratorContext) -> str:
    """One cell of markdown: an inline preview and where the file lives."""
    key = store.key_for(artifact.storage_url)
    link = store.browser_url(key) if key else artifact.storage_url
    if isinstance(artifact, TextArtifact):
        text = html.escape(artifact.content[:200]).replace("\n", " ").replace("|", "\\|")
        return f"“{text}{'…' if len(artifact.content) > 200 else ''}”"
    try:
        path = await ctx.resolve_artifact(artifact)
        if isinstance(artifact, ImageArtifact):
            img = await asyncio.to_thread(image_thumbnail, path)
            facts = f"{artifact.width}×{artifact.height} {artifact.format}"
        elif isinstance(artifact, VideoArtifact):
            img = await video_preview(path, artifact.duration)
            facts = f"{artifact.width}×{artifact.height} {artifact.duration:.1f}s {artifact.fps:g}fps"
        elif isinstance(artifact, AudioArtifact):
            img = await asyncio.to_thread(waveform, path)
            facts = f"{artifact.duration:.1f}s {artifact.sample_rate}Hz"
        else:
            return f"[{artifact.format}]({link})"
    except (BoardflowError, OSError) as exc:  # a preview is a nicety: never fail a run over it
        return f"(no preview: {html.escape(str(exc)[:80])}) [{artifact.short}]({link})"
    return f"![{artifact.short}]({img})<br>{facts} · [{artifact.short}]({link})"


async def publish_previews(pipeline: str, runner: Any, outputs: dict[str, Any], store: ArtifactStore) -> None:
    """Markdown artifacts whose *descriptions* hold the previews (the run's Artifacts tab shows descriptions)."""
    from prefect.artifacts import acreate_markdown_artifact
    from pydantic import TypeAdapter

    from generators.artifacts import AnyArtifact

    from .costs import artifact_key

    adapter = TypeAdapter(AnyArtifact)
    async with GeneratorContext(store) as ctx:
        if outputs:
            rows = ["| output | preview |", "|---|---|"]
            for name, value in outputs.items():
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, dict) and "kind" in item:
                        rows.append(
                            f"| **{name}** | {await preview_markdown(adapter.validate_python(item), store, ctx)} |"
                        )
            text = f"### Outputs of `{pipeline}`\n\n" + "\n".join(rows)
            await acreate_markdown_artifact(key=artifact_key(pipeline, "outputs"), markdown=text, description=text)
        rows = ["| step | generator | preview |", "|---|---|---|"]
        for step, result in runner.results.items():
            for i, res in enumerate(result if isinstance(result, list) else [result]):
                if not isinstance(res, GeneratorResult):
                    continue
                label = f"{step}[{i}]" if isinstance(result, list) else step
                for art in res.artifacts():
                    rows.append(f"| {label} | {res.generator} | {await preview_markdown(art, store, ctx)} |")
        if len(rows) > 2:
            text = f"### Step outputs of `{pipeline}`\n\n" + "\n".join(rows)
            await acreate_markdown_artifact(key=artifact_key(pipeline, "steps"), markdown=text, description=text)
