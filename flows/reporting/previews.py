"""Small inline previews of media outputs for the Prefect UI: thumbnails, animated clips, waveforms."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import io
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generators.artifacts import (
    Artifact,
    AudioArtifact,
    ImageArtifact,
    TextArtifact,
    VideoArtifact,
    output_artifacts,
)
from generators.base import GeneratorResult
from generators.context import GeneratorContext
from generators.errors import BoardflowError
from generators.media import run_ffmpeg
from generators.storage import ArtifactStore

from ..events import Event, StepDone
from .media import MediaLinks

THUMB_WIDTH = 240
PREVIEW_VERSION = 1  # bump when previews change look, so kept ones are made again


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


async def video_preview(path: Path, duration: float, width: int = THUMB_WIDTH, frames: int = 10, nice: int = 0) -> str:
    """An animated WebP of `frames` frames spread over the clip, looping (ffmpeg at `nice`, one thread)."""
    with tempfile.TemporaryDirectory(prefix="boardflow-preview-") as tmp:
        out = Path(tmp) / "preview.webp"
        rate = max(frames / max(duration, 0.1), 0.1)
        await run_ffmpeg(
            [
                "-threads",
                "1",
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
            nice=nice,
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


@dataclass
class Preview:
    """One output's preview: an inline image (a data: URI) when there is one, facts, and where the file lives.

    `where` is markdown (see MediaLinks.where); `player` a <video>/<audio> element for a final output, or "".
    """

    label: str
    where: str
    image: str | None = None
    facts: str = ""
    player: str = ""

    def cell(self) -> str:
        """A table cell: the image above its facts and link."""
        image = f"![{self.label}]({self.image})<br>" if self.image else ""
        return f"{image}{self.details()}"

    def details(self) -> str:
        return f"{self.facts} · {self.where}" if self.facts else self.where

    def inline(self) -> str:
        return f"`{self.label}` ![{self.label}]({self.image})" if self.image else ""


ImageSource = Callable[[Artifact], Awaitable[str]]


async def make_preview(
    label: str,
    artifact: Artifact,
    store: ArtifactStore,
    ctx: GeneratorContext,
    image: ImageSource | None = None,
    links: MediaLinks = MediaLinks(),
) -> Preview:
    """The preview of one artifact: its image from `image` (a `Previews` maker) or made here, its place from `links`."""
    preview = Preview(label, links.where(artifact, store))
    if isinstance(artifact, TextArtifact):
        text = html.escape(artifact.content[:200]).replace("\n", " ").replace("|", "\\|")
        preview.facts = f"“{text}{'…' if len(artifact.content) > 200 else ''}”"
        return preview
    if isinstance(artifact, ImageArtifact):
        preview.facts = f"{artifact.width}×{artifact.height} {artifact.format}"
    elif isinstance(artifact, VideoArtifact):
        preview.facts = f"{artifact.width}×{artifact.height} {artifact.duration:.1f}s {artifact.fps:g}fps"
    elif isinstance(artifact, AudioArtifact):
        preview.facts = f"{artifact.duration:.1f}s {artifact.sample_rate}Hz"
    else:
        preview.facts = artifact.format
        return preview
    try:
        preview.image = await (image(artifact) if image else preview_image(artifact, store, ctx))
    except (BoardflowError, OSError) as exc:  # a preview is a nicety: never fail a run over it
        preview.facts += f" (no preview: {html.escape(str(exc)[:80])})"
    return preview


async def preview_image(artifact: Artifact, store: ArtifactStore, ctx: GeneratorContext, nice: int = 0) -> str:
    """The inline image (a data: URI) of an image, video or audio artifact.

    Kept by content next to the objects: a cached re-run (or the same output listed twice) shows it again
    without fetching the media or running ffmpeg.
    """
    kept = f"previews/{artifact.sha256}-v{PREVIEW_VERSION}.json"
    found = await store.read_json(kept)
    if found and found.get("image"):
        return found["image"]
    path = await ctx.resolve_artifact(artifact)
    if isinstance(artifact, ImageArtifact):
        image = await asyncio.to_thread(image_thumbnail, path)
    elif isinstance(artifact, VideoArtifact):
        image = await video_preview(path, artifact.duration, nice=nice)
    else:
        image = await asyncio.to_thread(waveform, path)
    await store.write_json(kept, {"image": image})
    return image


class Previews:
    """Preview images made while the run goes on: each step's artifacts as soon as it is done (it follows the
    run's events), one at a time and with ffmpeg at a low priority so the steps keep the CPU; what is left
    is finished, two at a time, when the run publishes its cards.

    Use as `async with Previews(store) as previews:` around the run, with `previews.follow` in its sink.
    """

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self._made: dict[str, asyncio.Task[str]] = {}
        self._gate = asyncio.Semaphore(1)
        self._ctx = GeneratorContext(store)
        self._links: asyncio.Task[MediaLinks] | None = None

    async def __aenter__(self) -> Previews:
        await self._ctx.__aenter__()
        # One API call per run (~30 ms on a busy 2-core box), asked while the steps run, not after them.
        self._links = asyncio.get_running_loop().create_task(MediaLinks.announced())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        jobs = [*self._made.values(), *([self._links] if self._links else [])]
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await self._ctx.__aexit__(*exc)

    def follow(self, event: Event) -> None:
        if isinstance(event, StepDone):
            for artifact in event.result.artifacts():
                self.start(artifact)

    def start(self, artifact: Artifact) -> None:
        if artifact.sha256 not in self._made and isinstance(artifact, ImageArtifact | VideoArtifact | AudioArtifact):
            self._made[artifact.sha256] = asyncio.get_running_loop().create_task(self._make(artifact))

    async def _make(self, artifact: Artifact) -> str:
        async with self._gate:
            return await preview_image(artifact, self.store, self._ctx, nice=10)

    async def image(self, artifact: Artifact) -> str:
        self.start(artifact)
        return await self._made[artifact.sha256]

    def hurry(self) -> None:
        """The run is over: nothing competes for the CPU now, so let a second preview run beside the first."""
        self._gate.release()

    async def publish(self, pipeline: str, results: dict[str, Any], outputs: dict[str, Any]) -> None:
        self.hurry()
        links = await self._links if self._links else await MediaLinks.announced()
        await publish_previews(pipeline, results, outputs, self.store, image=self.image, ctx=self._ctx, links=links)


async def preview_markdown(artifact: Artifact, store: ArtifactStore, ctx: GeneratorContext) -> str:
    """One cell of markdown: an inline preview and where the file lives."""
    return (await make_preview(artifact.short, artifact, store, ctx)).cell()


def card_markdown(
    title: str, previews: list[tuple[str, Preview]], first_column: str, lead: bool = False
) -> tuple[str, str]:
    """(description, body) of a preview artifact.

    The V1 UI's artifact card shows only the first line of a description, so every preview image sits
    on that line; with `lead` (a run's final outputs) so do each output's player and where it lives
    (V1 renders the raw <video>/<audio> HTML; V2 leaves it out: both checked in Chromium against
    Prefect 3.9.1 on 2026-12-03). V2 shows all of the description, so the table below carries the
    facts, and the links not already on the first line, without repeating the images. The body is
    the full table with images in cells; the artifact's own page shows it below the description (whose
    players are the ones that play: on V1's run page the whole card is a link to that page).
    """
    if lead:
        strip = " · ".join(" ".join(x for x in (p.inline(), p.player, p.where) if x) for _, p in previews)
    else:
        strip = " ".join(p.inline() for _, p in previews if p.image)
    header = f"| {first_column} | output |\n|---|---|"
    details = "\n".join(f"| {name} | {p.facts if lead and p.facts else p.details()} |" for name, p in previews)
    cells = "\n".join(f"| {name} | {p.cell()} |" for name, p in previews)
    first = f"**{title}**" + (f" · {strip}" if strip else "")
    return f"{first}\n\n{header}\n{details}", f"### {title}\n\n{header}\n{cells}"


async def publish_previews(
    pipeline: str,
    results: dict[str, Any],
    outputs: dict[str, Any],
    store: ArtifactStore,
    image: ImageSource | None = None,
    ctx: GeneratorContext | None = None,
    links: MediaLinks | None = None,
) -> None:
    """Markdown artifacts whose *descriptions* hold the previews (the run's Artifacts tab shows descriptions).

    `results` maps each step to its GeneratorResult (a list for a for_each step, None where it did not run);
    `links` says where each file opens (read from the API when not given).
    """
    from prefect.artifacts import acreate_markdown_artifact

    from .costs import artifact_key

    async with contextlib.AsyncExitStack() as stack:
        ctx = ctx or await stack.enter_async_context(GeneratorContext(store))
        links = links if links is not None else await MediaLinks.announced()
        if outputs:
            shown = []
            for name, _, art in output_artifacts(outputs):
                preview = await make_preview(name, art, store, ctx, image, links)
                preview.player = links.player(art)
                shown.append((f"**{name}**", preview))
            description, body = card_markdown(f"Outputs of `{pipeline}`", shown, "output", lead=True)
            key = artifact_key(pipeline, "outputs")
            await acreate_markdown_artifact(key=key, markdown=body, description=description)
        steps: list[tuple[str, Preview]] = []
        for step, result in results.items():
            for i, res in enumerate(result if isinstance(result, list) else [result]):
                if not isinstance(res, GeneratorResult):
                    continue
                label = f"{step}[{i}]" if isinstance(result, list) else step
                for art in res.artifacts():
                    preview = await make_preview(label, art, store, ctx, image, links)
                    steps.append((f"{label} · {res.generator}", preview))
        if steps:
            description, body = card_markdown(f"Step outputs of `{pipeline}`", steps, "step · generator")
            await acreate_markdown_artifact(key=artifact_key(pipeline, "steps"), markdown=body, description=description)
