"""local/image-resize: resize an image to an exact size — fit (letterbox), fill (crop) or stretch — with Lanczos."""

from __future__ import annotations

import asyncio
import io
import re
import time
from enum import StrEnum
from pathlib import Path

from PIL import Image, ImageOps
from pydantic import BaseModel, Field, field_validator

from ..artifacts import ImageArtifact
from ..base import BaseGenerator
from ..context import GeneratorContext

MAX_SIDE = 8192
_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


class ResizeMode(StrEnum):
    FIT = "fit"
    FILL = "fill"
    STRETCH = "stretch"


class ResizeFormat(StrEnum):
    SAME = "same"
    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"


class ImageResizeInput(BaseModel):
    image: ImageArtifact = Field(description="The image to resize.")
    width: int = Field(ge=16, le=MAX_SIDE, description="Output width in pixels.")
    height: int = Field(ge=16, le=MAX_SIDE, description="Output height in pixels.")
    mode: ResizeMode = Field(
        default=ResizeMode.FIT,
        description="fit: scale to fit inside and pad the rest with pad_color (letterbox); fill: scale to cover "
        "and crop the overflow, centred; stretch: scale each axis to the target, changing the proportions.",
    )
    pad_color: str = Field(
        default="#000000",
        description="Padding colour for mode 'fit', as #RRGGBB or #RRGGBBAA; the alpha makes PNG and WebP outputs "
        "transparent there and is ignored for JPEG.",
    )
    format: ResizeFormat = Field(
        default=ResizeFormat.SAME,
        description="Output file format; 'same' keeps the input's format when it is PNG, JPEG or WebP, else PNG.",
    )

    @field_validator("pad_color")
    @classmethod
    def _is_hex_colour(cls, value: str) -> str:
        value = value.strip()
        if not _HEX_COLOUR.match(value):
            raise ValueError(f"pad_color {value!r} is not a colour; write it as #RRGGBB or #RRGGBBAA, e.g. '#1a1a1a'")
        return value.lower()

    @property
    def pad_rgba(self) -> tuple[int, int, int, int]:
        digits = self.pad_color.lstrip("#")
        channels = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
        red, green, blue = channels[:3]
        return (red, green, blue, channels[3] if len(channels) == 4 else 255)


class ImageResizeOutput(BaseModel):
    image: ImageArtifact


def output_format(inputs: ImageResizeInput) -> str:
    if inputs.format is not ResizeFormat.SAME:
        return inputs.format.value
    return inputs.image.format if inputs.image.format in ("png", "jpeg", "webp") else "png"


def resize(source: Path, inputs: ImageResizeInput) -> bytes:
    """The resized image's encoded bytes: exactly width x height, in the chosen format."""
    fmt = output_format(inputs)
    size = (inputs.width, inputs.height)
    with Image.open(source) as opened:
        img = ImageOps.exif_transpose(opened)  # phone photos carry their rotation in EXIF; apply it
    pad = inputs.pad_rgba
    keeps_alpha = fmt != "jpeg" and (img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info or pad[3] < 255)
    img = img.convert("RGBA" if keeps_alpha else "RGB")
    lanczos = Image.Resampling.LANCZOS
    if inputs.mode is ResizeMode.FILL:
        img = ImageOps.fit(img, size, method=lanczos, centering=(0.5, 0.5))
    elif inputs.mode is ResizeMode.STRETCH:
        img = img.resize(size, lanczos)
    else:
        img = ImageOps.pad(img, size, method=lanczos, color=pad if keeps_alpha else pad[:3], centering=(0.5, 0.5))
    buffer = io.BytesIO()
    if fmt == "jpeg":
        img.save(buffer, "JPEG", quality=92, optimize=True)
    elif fmt == "webp":
        img.save(buffer, "WEBP", quality=90, method=4)
    else:
        img.save(buffer, "PNG")
    return buffer.getvalue()


class ImageResizeGenerator(BaseGenerator):
    name = "local/image-resize"
    artifact_type = "image"
    description = "Resize an image to an exact size: fit with padding, fill with a centred crop, or stretch."
    version = "1"

    def get_input_schema(self) -> type[ImageResizeInput]:
        return ImageResizeInput

    def get_output_schema(self) -> type[ImageResizeOutput]:
        return ImageResizeOutput

    async def generate(self, inputs: ImageResizeInput, context: GeneratorContext) -> ImageResizeOutput:
        source = await context.resolve_artifact(inputs.image)
        started = time.perf_counter()
        data = await asyncio.to_thread(resize, source, inputs)  # Pillow work off the event loop
        context.record_compute_seconds(time.perf_counter() - started)
        context.publish_progress(1.0, f"{self.name}: {inputs.width}x{inputs.height} {inputs.mode.value}")
        return ImageResizeOutput(image=await context.store_image_result(data, format=output_format(inputs)))
