"""local/ken-burns: a smooth pan/zoom over a still image, encoded as browser-ready H.264 MP4.

How the motion stays smooth: ffmpeg's `zoompan` crops at whole pixels, so slow moves stutter.
We instead crop the still to the area the move covers and scale that once to a working canvas
(big enough that the tightest view is sampled at least 1:1, within the image's own detail and a
4K-sized pixel budget), repeat that one frame with `loop`, and move the view with `perspective`
evaluated per frame — it samples at fractional source coordinates (bilinear), so a move of a third
of a pixel per frame shows as a third of a pixel. A final scale brings the canvas down to the output
size, which also antialiases. Everything runs in one ffmpeg process.

Captions: a caption drawn into the still sits in its bottom band, which most moves crop away (every
frame of a pan). With `caption_band` that band is held steady at the bottom of every frame and the camera
moves over the picture above it; with `caption` the caption is laid over the video after the motion.
Either is one RGBA layer made with Pillow and overlaid by ffmpeg.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Self

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, Field, field_validator, model_validator

from ..artifacts import ImageArtifact, VideoArtifact
from ..base import BaseGenerator
from ..context import GeneratorContext
from ..errors import ArtifactDecodeError, InputValidationError
from ..media import BITEXACT, H264
from ._caption import bottom_layer, held_band, one_line_caption
from ._video import BT709_TAGS, TAG_BT709, TO_BT709, FrameRate, VideoResolution, even, run_timed_ffmpeg

# The canvas is filtered once per output frame, so its size is the cost: at most a 4K frame's worth.
MAX_CANVAS_PIXELS = 3840 * 2160


def total_frames(duration: float, fps: int) -> int:
    """round(duration × fps) with halves rounded up, never below one frame: the output's exact frame count."""
    return max(1, math.floor(duration * fps + 0.5))


class Motion(StrEnum):
    ZOOM_IN = "zoom-in"
    ZOOM_OUT = "zoom-out"
    PAN_LEFT = "pan-left"
    PAN_RIGHT = "pan-right"
    PAN_UP = "pan-up"
    PAN_DOWN = "pan-down"
    CUSTOM = "custom"


class Easing(StrEnum):
    LINEAR = "linear"
    EASE_IN_OUT = "ease-in-out"


class Rect(BaseModel):
    """A view of the image in fractions of its width and height; (0, 0) is the top-left corner."""

    x: float = Field(default=0.0, ge=0.0, le=0.95, description="Left edge, as a fraction of the image width.")
    y: float = Field(default=0.0, ge=0.0, le=0.95, description="Top edge, as a fraction of the image height.")
    width: float = Field(default=1.0, ge=0.05, le=1.0, description="Width, as a fraction of the image width.")
    height: float = Field(default=1.0, ge=0.05, le=1.0, description="Height, as a fraction of the image height.")

    @model_validator(mode="after")
    def _inside_image(self) -> Self:
        if self.x + self.width > 1.0 + 1e-9 or self.y + self.height > 1.0 + 1e-9:
            raise ValueError(
                f"rectangle x={self.x}, y={self.y}, width={self.width}, height={self.height} reaches past the "
                "image: keep x + width ≤ 1 and y + height ≤ 1"
            )
        return self


class KenBurnsInput(BaseModel):
    image: ImageArtifact = Field(description="The still image to move over.")
    motion: Motion = Field(
        default=Motion.ZOOM_IN,
        description="A preset move, or 'custom' to travel from start_rect to end_rect. Pans travel the way "
        "they are named: pan-left moves the view from the right edge to the left edge.",
    )
    zoom: float = Field(
        default=1.25,
        ge=1.05,
        le=3.0,
        description="How tight the presets get: 1.25 shows 80% of the image width at the close end of a zoom, "
        "and pans move a view that size.",
    )
    start_rect: Rect | None = Field(default=None, description="First view, for motion='custom'.")
    end_rect: Rect | None = Field(default=None, description="Last view, for motion='custom'.")
    duration: float = Field(default=5.0, ge=0.5, le=60.0, description="Length of the clip in seconds.")
    fps: FrameRate = Field(default=FrameRate.FPS30, description="Frames per second.")
    resolution: VideoResolution = Field(default=VideoResolution.R1280X720, description="Output frame size.")
    easing: Easing = Field(default=Easing.EASE_IN_OUT, description="Speed curve of the move.")
    caption_band: float = Field(
        default=0.0,
        ge=0.0,
        le=0.4,
        description="Fraction of the still's height along its bottom that holds a caption: that band stays "
        "whole and steady at the bottom of every frame while the camera moves over the picture above it (the "
        "rectangles of 'custom' are then fractions of that picture). local/procedural-image's caption takes up "
        "to 0.15 of a landscape or square still, 0.08 of a portrait one. 0: the camera moves over all of it.",
    )
    caption: str | None = Field(
        default=None,
        max_length=120,
        description="Text laid along the bottom of the video after the motion, so it stays put and sharp in "
        "every frame (local/procedural-image's caption look, sized for the output); omit for none.",
    )

    @field_validator("caption")
    @classmethod
    def _caption_is_printable(cls, value: str | None) -> str | None:
        return one_line_caption(value)

    @model_validator(mode="after")
    def _rects_match_motion(self) -> Self:
        has_rects = self.start_rect is not None or self.end_rect is not None
        if self.motion is Motion.CUSTOM and (self.start_rect is None or self.end_rect is None):
            raise ValueError(
                "motion='custom' needs both start_rect and end_rect, e.g. {'x': 0, 'y': 0, 'width': 1, 'height': 1}"
            )
        if self.motion is not Motion.CUSTOM and has_rects:
            raise ValueError(
                f"start_rect/end_rect are used only with motion='custom', not {self.motion.value!r}; "
                "set motion to 'custom' or drop the rectangles"
            )
        return self

    @property
    def frame_count(self) -> int:
        return total_frames(self.duration, int(self.fps))


class KenBurnsOutput(BaseModel):
    video: VideoArtifact


@dataclass(frozen=True)
class View:
    """A view in image pixels (left, top, width, height); always of the output's aspect ratio."""

    left: float
    top: float
    width: float
    height: float

    def scaled(self, sx: float, sy: float) -> View:
        return View(self.left * sx, self.top * sy, self.width * sx, self.height * sy)


@dataclass(frozen=True)
class KenBurnsPlan:
    """Everything the ffmpeg command needs, computed from the inputs and the image's real size."""

    start: View  # in canvas pixels
    end: View
    image: tuple[int, int]  # the upright still's width, height
    band_rows: int  # rows of the still held at the bottom (caption_band); the camera moves above them
    crop: tuple[int, int, int, int]  # x, y, width, height of the image area the move covers
    canvas: tuple[int, int]
    output: tuple[int, int]
    fps: int
    frames: int
    easing: Easing

    @property
    def duration(self) -> float:
        return self.frames / self.fps


def _fit_aspect(left: float, top: float, width: float, height: float, aspect: float) -> View:
    """The largest view of `aspect` (width/height) centred inside the given box: no stretching, ever."""
    if width / height > aspect:
        new_w = height * aspect
        return View(left + (width - new_w) / 2, top, new_w, height)
    new_h = width / aspect
    return View(left, top + (height - new_h) / 2, width, new_h)


def _preset_views(motion: Motion, zoom: float, iw: int, ih: int, aspect: float) -> tuple[View, View]:
    full = _fit_aspect(0, 0, iw, ih, aspect)
    w, h = full.width / zoom, full.height / zoom
    cx, cy = full.left + full.width / 2, full.top + full.height / 2
    tight = View(cx - w / 2, cy - h / 2, w, h)
    if motion is Motion.ZOOM_IN:
        return full, tight
    if motion is Motion.ZOOM_OUT:
        return tight, full
    at_left, at_right = View(0, tight.top, w, h), View(iw - w, tight.top, w, h)
    at_top, at_bottom = View(tight.left, 0, w, h), View(tight.left, ih - h, w, h)
    return {
        Motion.PAN_LEFT: (at_right, at_left),
        Motion.PAN_RIGHT: (at_left, at_right),
        Motion.PAN_UP: (at_bottom, at_top),
        Motion.PAN_DOWN: (at_top, at_bottom),
    }[motion]


def plan_ken_burns(inputs: KenBurnsInput, image_width: int, image_height: int) -> KenBurnsPlan:
    """The crop, the working canvas and the first/last views on it, for this image and these inputs."""
    ow, oh = inputs.resolution.size
    aspect = ow / oh
    band_rows = min(round(inputs.caption_band * image_height), image_height - 2)
    if band_rows * ow / image_width > oh / 2:
        raise InputValidationError(
            KenBurnsGenerator.name,
            [
                (
                    "caption_band",
                    f"{inputs.caption_band:g} of this {image_width}x{image_height} still would cover more than "
                    f"half of the {ow}x{oh} frame; give a smaller band or a taller resolution",
                )
            ],
        )
    image_height -= band_rows  # the picture the camera moves over
    if inputs.motion is Motion.CUSTOM:
        assert inputs.start_rect is not None and inputs.end_rect is not None  # the validator saw to it
        start, end = (
            _fit_aspect(r.x * image_width, r.y * image_height, r.width * image_width, r.height * image_height, aspect)
            for r in (inputs.start_rect, inputs.end_rect)
        )
    else:
        start, end = _preset_views(inputs.motion, inputs.zoom, image_width, image_height, aspect)
    x0, y0 = max(0, math.floor(min(start.left, end.left))), max(0, math.floor(min(start.top, end.top)))
    x1 = min(image_width, math.ceil(max(start.left + start.width, end.left + end.width)))
    y1 = min(image_height, math.ceil(max(start.top + start.height, end.top + end.height)))
    crop_w, crop_h = x1 - x0, y1 - y0
    # Enough canvas to show the tightest view 1:1, but no more than the image has (or the output needs).
    canvas_w = min(ow * crop_w / min(start.width, end.width), max(crop_w, ow))
    canvas_h = min(oh * crop_h / min(start.height, end.height), max(crop_h, oh))
    shrink = min(1.0, math.sqrt(MAX_CANVAS_PIXELS / (canvas_w * canvas_h)))
    cw, ch = even(max(canvas_w * shrink, ow)), even(max(canvas_h * shrink, oh))
    to_canvas = (cw / crop_w, ch / crop_h)
    return KenBurnsPlan(
        start=View(start.left - x0, start.top - y0, start.width, start.height).scaled(*to_canvas),
        end=View(end.left - x0, end.top - y0, end.width, end.height).scaled(*to_canvas),
        image=(image_width, image_height + band_rows),
        band_rows=band_rows,
        crop=(x0, y0, crop_w, crop_h),
        canvas=(cw, ch),
        output=(ow, oh),
        fps=int(inputs.fps),
        frames=inputs.frame_count,
        easing=inputs.easing,
    )


def _progress_expr(plan: KenBurnsPlan) -> str:
    """Fraction of the move done at frame `in` (0 on the first frame, 1 on the last), after easing."""
    if plan.frames == 1:
        return "0"
    # perspective counts frames from 1 (`in` is frame_count_out + 1); clip keeps the ends exact.
    t = f"clip((in-1)/{plan.frames - 1},0,1)"
    return t if plan.easing is Easing.LINEAR else f"((1-cos(PI*{t}))/2)"


def filter_graph(plan: KenBurnsPlan, *, layered: bool = False) -> str:
    """The filtergraph: the moving picture from input 0, and with `layered` input 1 laid along its bottom."""
    cw, ch = plan.canvas
    ow, oh = plan.output
    a, b = plan.start, plan.end
    p = _progress_expr(plan)

    def lerp(v0: float, v1: float) -> str:
        return f"{v0:.6f}" if abs(v1 - v0) < 1e-9 else f"({v0:.6f}+({v1 - v0:.6f})*{p})"

    left, top = lerp(a.left, b.left), lerp(a.top, b.top)
    right, bottom = lerp(a.left + a.width, b.left + b.width), lerp(a.top + a.height, b.top + b.height)
    corners = f"x0='{left}':y0='{top}':x1='{right}':y1='{top}':x2='{left}':y2='{bottom}':x3='{right}':y3='{bottom}'"
    x, y, w, h = plan.crop
    # exact=1: without it ffmpeg rounds the offsets of 4:2:0 stills (JPEG) to even pixels.
    steps = [] if (x, y, (w, h)) == (0, 0, plan.image) else [f"crop={w}:{h}:{x}:{y}:exact=1"]
    steps += [
        f"scale={cw}:{ch}:flags=lanczos:{TO_BT709}",
        "format=yuv420p",
        f"loop=loop={plan.frames - 1}:size=1",  # decode and scale the still once, then repeat it
        f"settb=1/{plan.fps}",
        "setpts=N",
        f"perspective={corners}:interpolation=linear:eval=frame",
    ]
    if (cw, ch) != (ow, oh):
        steps.append(f"scale={ow}:{oh}:flags=bicubic")
    steps.append("setsar=1")
    if not layered:
        return f"[0:v]{','.join([*steps, TAG_BT709])}[v]"
    # The layer is one still frame: overlay repeats it under every frame of the move.
    return (
        f"[0:v]{','.join(steps)}[moving];[1:v]scale={TO_BT709},format=yuva420p[layer];"
        f"[moving][layer]overlay=x=0:y=main_h-overlay_h:format=yuv420,{TAG_BT709}[v]"
    )


def ffmpeg_args(plan: KenBurnsPlan, image: Path, out: Path, layer: Path | None = None) -> list[str]:
    """The whole ffmpeg command after the binary (benchmarks run exactly this from the shell)."""
    return [
        "-i", str(image), *(["-i", str(layer)] if layer is not None else []),
        "-filter_complex", filter_graph(plan, layered=layer is not None),
        "-map", "[v]", "-frames:v", str(plan.frames), "-r", str(plan.fps),
        *H264, *BT709_TAGS, *BITEXACT, "-an", str(out),
    ]  # fmt: skip


def upright_still(source: Path, scratch: Path) -> tuple[Path, int, int]:
    """The still as it should be seen, and its size: EXIF rotation applied, transparency flattened onto black.

    Most stills need neither and are used as they are (only the header is read); others are rewritten
    once to `scratch` as PNG, so ffmpeg and the motion plan agree on which way is up and on the size.
    """
    try:
        with Image.open(source) as img:
            orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
            has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
            if orientation == 1 and not has_alpha:
                return source, img.width, img.height
            upright = ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise ArtifactDecodeError(
            f"The still {source.name} no longer decodes ({exc}).",
            hint="The stored copy may be damaged: re-run the step that made it.",
        ) from exc
    if has_alpha:
        rgba = upright.convert("RGBA")
        upright = Image.new("RGB", rgba.size, (0, 0, 0))
        upright.paste(rgba, mask=rgba.getchannel("A"))
    upright.convert("RGB").save(scratch, "PNG", compress_level=1)
    return scratch, upright.width, upright.height


def render_layer(inputs: KenBurnsInput, plan: KenBurnsPlan, still: Path, out: Path) -> Path | None:
    """The PNG laid along the bottom of every frame (held band and/or caption), or None when there is none."""
    band = None
    if plan.band_rows:
        with Image.open(still) as img:
            band = held_band(img, plan.band_rows, plan.output[0])
    layer = bottom_layer(plan.output, band=band, caption=inputs.caption)
    if layer is None:
        return None
    layer.save(out, "PNG", compress_level=1)
    return out


class KenBurnsGenerator(BaseGenerator):
    name = "local/ken-burns"
    artifact_type = "video"
    description = "Pan and zoom smoothly over a still image (presets or start/end views); H.264 MP4."
    version = "2"  # 2: full BT.709 tags; caption_band and caption

    def get_input_schema(self) -> type[KenBurnsInput]:
        return KenBurnsInput

    def get_output_schema(self) -> type[KenBurnsOutput]:
        return KenBurnsOutput

    async def generate(self, inputs: KenBurnsInput, context: GeneratorContext) -> KenBurnsOutput:
        stored = await context.resolve_artifact(inputs.image)
        source, iw, ih = await asyncio.to_thread(upright_still, stored, context.temp_path(".png"))
        plan = plan_ken_burns(inputs, iw, ih)
        layer = await asyncio.to_thread(render_layer, inputs, plan, source, context.temp_path(".png"))
        out = context.temp_path(".mp4")
        await run_timed_ffmpeg(
            context,
            ffmpeg_args(plan, source, out, layer),
            duration=plan.duration,
            what=f"{self.name} ({plan.frames} frames)",
        )
        context.publish_progress(1.0, f"{self.name}: done")
        return KenBurnsOutput(video=await context.store_video_result(out, format="mp4"))
