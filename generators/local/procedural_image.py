"""local/procedural-image: a deterministic landscape-like picture composed from the prompt's words and a seed.

Colour words ("crimson", "teal"…) and scene words ("ocean", "sunset", "night"…) in the prompt pick the
palette; the prompt's hash and the seed pick the rest (layout, ridges, glow). Layers: a sky gradient,
soft glows, a sun or moon with a halo, hazy ridge lines that darken towards the viewer, film grain and
a vignette; optionally a caption. Same prompt + seed → the same bytes.
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import io
import re
import time
from enum import StrEnum

import numpy as np
from PIL import Image, ImageFilter
from pydantic import BaseModel, Field, field_validator

from ..artifacts import ImageArtifact
from ..base import BaseGenerator
from ..context import GeneratorContext
from ._caption import draw_caption, one_line_caption

RGB = tuple[float, float, float]

# Words that name or strongly suggest a colour, as RGB in 0..1. Scene words count too: "ocean" is blue.
_WORD_COLOURS: dict[str, RGB] = {
    "red": (0.86, 0.16, 0.2),
    "crimson": (0.66, 0.08, 0.2),
    "scarlet": (0.9, 0.14, 0.1),
    "orange": (0.96, 0.52, 0.16),
    "amber": (1.0, 0.72, 0.0),
    "coral": (1.0, 0.5, 0.42),
    "gold": (0.94, 0.74, 0.24),
    "golden": (0.94, 0.74, 0.24),
    "yellow": (0.96, 0.86, 0.27),
    "lime": (0.6, 0.86, 0.2),
    "green": (0.24, 0.66, 0.32),
    "emerald": (0.1, 0.6, 0.4),
    "teal": (0.0, 0.5, 0.5),
    "turquoise": (0.25, 0.88, 0.82),
    "cyan": (0.1, 0.8, 0.9),
    "aqua": (0.3, 0.85, 0.9),
    "blue": (0.16, 0.36, 0.82),
    "azure": (0.2, 0.55, 0.95),
    "navy": (0.05, 0.1, 0.35),
    "indigo": (0.29, 0.1, 0.55),
    "violet": (0.56, 0.3, 0.85),
    "purple": (0.5, 0.2, 0.65),
    "lavender": (0.72, 0.62, 0.9),
    "magenta": (0.85, 0.15, 0.65),
    "pink": (0.96, 0.56, 0.72),
    "rose": (0.9, 0.4, 0.55),
    "peach": (1.0, 0.75, 0.6),
    "brown": (0.45, 0.28, 0.16),
    "grey": (0.5, 0.52, 0.55),
    "gray": (0.5, 0.52, 0.55),
    "silver": (0.75, 0.77, 0.8),
    "white": (0.94, 0.94, 0.96),
    "black": (0.05, 0.05, 0.07),
    "ocean": (0.05, 0.35, 0.6),
    "sea": (0.08, 0.4, 0.62),
    "lake": (0.2, 0.45, 0.6),
    "river": (0.25, 0.5, 0.6),
    "sky": (0.45, 0.68, 0.92),
    "forest": (0.13, 0.4, 0.2),
    "jungle": (0.1, 0.45, 0.15),
    "meadow": (0.45, 0.7, 0.3),
    "desert": (0.86, 0.66, 0.4),
    "sand": (0.9, 0.78, 0.55),
    "snow": (0.88, 0.93, 0.98),
    "ice": (0.7, 0.88, 0.96),
    "fire": (0.95, 0.35, 0.08),
    "lava": (0.85, 0.2, 0.05),
    "sunset": (0.98, 0.45, 0.3),
    "dawn": (0.98, 0.7, 0.6),
    "autumn": (0.8, 0.42, 0.12),
    "storm": (0.3, 0.34, 0.42),
    "neon": (0.95, 0.1, 0.85),
}
# Mood words change lightness and saturation of the whole palette.
_MOODS: dict[str, tuple[float, float]] = {  # word -> (lightness factor, saturation factor)
    "night": (0.45, 0.9),
    "midnight": (0.35, 0.85),
    "dark": (0.55, 0.9),
    "moonlit": (0.5, 0.8),
    "dusk": (0.7, 1.0),
    "bright": (1.15, 1.05),
    "sunny": (1.15, 1.1),
    "pastel": (1.2, 0.45),
    "misty": (1.1, 0.5),
    "foggy": (1.1, 0.4),
    "vivid": (1.0, 1.35),
    "neon": (0.9, 1.4),
    "muted": (0.95, 0.55),
}


class ImageSize(StrEnum):
    S512X512 = "512x512"
    S768X768 = "768x768"
    S1024X1024 = "1024x1024"
    S1024X576 = "1024x576"
    S576X1024 = "576x1024"
    S1280X720 = "1280x720"
    S1920X1080 = "1920x1080"
    S1080X1920 = "1080x1920"

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.value.split("x")
        return int(width), int(height)


class ImageFormat(StrEnum):
    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"


class ProceduralImageInput(BaseModel):
    prompt: str = Field(
        min_length=1,
        max_length=2000,
        description="What to picture. Colour words (crimson, teal…), scene words (ocean, desert, sunset…) and "
        "moods (night, pastel, misty…) steer the palette; every word changes the composition.",
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Variation number: same prompt + seed, same image.")
    size: ImageSize = Field(default=ImageSize.S1024X1024, description="Width x height in pixels.")
    format: ImageFormat = Field(default=ImageFormat.PNG, description="File format of the output.")
    caption: str | None = Field(
        default=None,
        max_length=120,
        description="Text drawn along the bottom of the image, in Pillow's bundled Latin font (accents are "
        "dropped, other missing characters become '?'); omit for none.",
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_has_words(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError(
                "the prompt is empty or only whitespace; describe the picture, e.g. 'misty teal mountains at dawn'"
            )
        return value

    @field_validator("caption")
    @classmethod
    def _caption_is_printable(cls, value: str | None) -> str | None:
        return one_line_caption(value)


class ProceduralImageOutput(BaseModel):
    image: ImageArtifact


def _shade(colour: RGB, lightness: float = 1.0, saturation: float = 1.0) -> RGB:
    hue, light, sat = colorsys.rgb_to_hls(*colour)
    return colorsys.hls_to_rgb(hue, min(max(light * lightness, 0.02), 0.97), min(max(sat * saturation, 0.0), 1.0))


def palette_for(prompt: str, rng: np.random.Generator) -> tuple[list[RGB], float]:
    """Five colours (sky top, horizon, light source, far ridge, near ridge) and the mood's lightness factor."""
    words = re.findall(r"[a-z]+", prompt.lower())
    named = [_WORD_COLOURS[w] for w in words if w in _WORD_COLOURS]
    # Fill up from a hue picked by the prompt's hash, with a harmony (analogous, triadic, split) also picked.
    base_hue = rng.random()
    if named:  # derive the rest from the first named colour so they harmonise with it
        base_hue = colorsys.rgb_to_hls(*named[0])[0]
    offsets = [(0.0, 0.08, -0.08), (0.0, 1 / 3, 2 / 3), (0.0, 0.42, 0.58)][int(rng.integers(3))]
    derived = [colorsys.hls_to_rgb((base_hue + o) % 1.0, 0.5, 0.55 + 0.3 * rng.random()) for o in offsets]
    colours = (named + derived)[:3]  # named colours first, in the prompt's order
    light, sat = 1.0, 1.0
    for w in words:
        if w in _MOODS:
            light, sat = light * _MOODS[w][0], sat * _MOODS[w][1]
    sky_top = _shade(colours[0], 0.55 * light, 1.1 * sat)
    horizon = _shade(colours[1], 1.25 * light, 0.9 * sat)
    orb = _shade(colours[2], 1.6, 0.6)
    far = _shade(colours[0], 0.9 * light, 0.7 * sat)
    near = _shade(colours[1], 0.25 * light, 0.9 * sat)
    return [sky_top, horizon, orb, far, near], light


def _smooth_noise(rng: np.random.Generator, length: int, octaves: int = 5) -> np.ndarray:
    """1-D fractal noise in about -1..1: random knots, cosine-interpolated, halving amplitude per octave."""
    out = np.zeros(length, dtype=np.float32)
    pos = np.linspace(0.0, 1.0, length, dtype=np.float32)
    amplitude, knots = 1.0, 3
    for _ in range(octaves):
        values = rng.uniform(-1.0, 1.0, knots + 1).astype(np.float32)
        scaled = pos * knots
        i = np.minimum(scaled.astype(np.int32), knots - 1)
        f = (1 - np.cos((scaled - i) * np.pi)) / 2
        out += amplitude * (values[i] * (1 - f) + values[i + 1] * f)
        amplitude, knots = amplitude * 0.5, knots * 2
    return out / 1.94


def _add_stars(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width, _ = img.shape
    count = int(width * height * 0.0003)
    field = np.zeros((height, width), dtype=np.float32)
    rows = (rng.random(count) ** 1.6 * height * 0.6).astype(np.int64)  # denser towards the zenith
    cols = rng.integers(0, width, count)
    field[rows, cols] = rng.uniform(0.3, 1.0, count).astype(np.float32) ** 2
    blurred = Image.fromarray((field * 255).astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(0.6))
    stars = np.asarray(blurred, dtype=np.float32)[..., None] / 255 * 2.5
    return 1 - (1 - img) * (1 - np.clip(stars, 0.0, 1.0))


def compose(prompt: str, seed: int, width: int, height: int) -> Image.Image:
    """The picture as an RGB image: pure function of (prompt, seed, size)."""
    digest = hashlib.sha256(f"{prompt}\x00{seed}".encode()).digest()
    rng = np.random.default_rng(np.frombuffer(digest, dtype=np.uint32))
    colours, lightness = palette_for(prompt, rng)
    sky_top, horizon, orb_colour, far, near = (np.array(c, dtype=np.float32) for c in colours)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    short = min(width, height)

    # Sky: a tilted gradient from the top colour to the horizon glow.
    tilt = rng.uniform(-0.25, 0.25)
    t = np.clip(ys * 1.15 + (xs - 0.5) * tilt, 0.0, 1.0)[..., None] ** 0.8
    img = sky_top * (1 - t) + horizon * t

    # Soft glows, screen-blended, like light through haze.
    for _ in range(int(rng.integers(3, 6))):
        cx, cy = rng.uniform(0, 1), rng.uniform(0, 0.7)
        radius = rng.uniform(0.15, 0.45) * short
        d2 = ((xs - cx) * width) ** 2 + ((ys - cy) * height) ** 2
        glow = (np.exp(-d2 / (2 * radius**2)) * rng.uniform(0.15, 0.35))[..., None]
        tint = (horizon + orb_colour) / 2 if rng.random() < 0.5 else sky_top * 1.6
        img = 1 - (1 - img) * (1 - glow * np.clip(tint, 0, 1))

    if lightness < 0.75:  # a dark sky gets stars
        img = _add_stars(img, rng)

    # The light source: a disc with a soft rim and a wide halo.
    ox, oy = rng.uniform(0.2, 0.8), rng.uniform(0.18, 0.45)
    r = rng.uniform(0.06, 0.11) * short
    dist = np.sqrt(((xs - ox) * width) ** 2 + ((ys - oy) * height) ** 2)
    disc = np.clip((r - dist) / (0.04 * r + 1.0), 0.0, 1.0)[..., None]
    halo = (np.exp(-dist / (2.5 * r)) * 0.45)[..., None]
    img = 1 - (1 - img) * (1 - halo * orb_colour)
    img = img * (1 - disc) + orb_colour * disc

    # Ridges: each nearer one lower, darker and sharper; far ones melt into the horizon haze.
    layers = int(rng.integers(3, 5))
    rows = np.arange(height, dtype=np.float32)[:, None]
    for k in range(layers):
        depth = (k + 1) / layers
        base = 0.5 + 0.33 * depth + rng.uniform(-0.04, 0.04)
        amplitude = (0.16 - 0.07 * depth) * height
        ridge = (base * height + amplitude * _smooth_noise(rng, width))[None, :]
        cover = np.clip(rows - ridge + 0.5, 0.0, 1.0)[..., None]  # 1-pixel antialiased edge
        colour = far * (1 - depth) + near * depth
        haze = np.clip((rows - ridge) / (0.35 * height), 0.0, 1.0)[..., None] * 0.25
        ground = colour * (1 - haze) + horizon * haze * (1 - depth)
        img = img * (1 - cover) + ground * cover

    # Grain against banding, and a vignette to hold the eye in.
    img = img + rng.normal(0.0, 0.018, size=(height, width, 1)).astype(np.float32)
    vignette = 1 - 0.38 * (((xs - 0.5) * 2) ** 2 + ((ys - 0.5) * 2) ** 2)[..., None] / 2
    img = np.clip(img * vignette, 0.0, 1.0)
    return Image.fromarray((img * 255 + 0.5).astype(np.uint8), "RGB")


def render(inputs: ProceduralImageInput) -> bytes:
    width, height = inputs.size.size
    image = compose(inputs.prompt, inputs.seed, width, height)
    if inputs.caption:
        image = draw_caption(image, inputs.caption)
    buffer = io.BytesIO()
    if inputs.format is ImageFormat.JPEG:
        image.save(buffer, "JPEG", quality=92, optimize=True)
    elif inputs.format is ImageFormat.WEBP:
        image.save(buffer, "WEBP", quality=90, method=4)
    else:
        image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


class ProceduralImageGenerator(BaseGenerator):
    name = "local/procedural-image"
    artifact_type = "image"
    description = "A deterministic landscape-like picture whose palette and layout come from the prompt and seed."
    version = "1"

    def get_input_schema(self) -> type[ProceduralImageInput]:
        return ProceduralImageInput

    def get_output_schema(self) -> type[ProceduralImageOutput]:
        return ProceduralImageOutput

    async def generate(self, inputs: ProceduralImageInput, context: GeneratorContext) -> ProceduralImageOutput:
        started = time.perf_counter()
        context.publish_progress(0.0, f"{self.name}: composing {inputs.size.value}")
        data = await asyncio.to_thread(render, inputs)  # NumPy work off the event loop
        context.record_compute_seconds(time.perf_counter() - started)
        context.publish_progress(1.0, f"{self.name}: done")
        return ProceduralImageOutput(image=await context.store_image_result(data, format=inputs.format.value))
