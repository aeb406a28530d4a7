"""Captions of the local generators: one look, drawn into a still or laid as a layer over moving video.

local/procedural-image draws its caption into the picture; local/ken-burns can instead lay the same
caption over the video after the motion, or hold the band of a captioned still steady at the bottom of
every frame, so the camera moving over the picture never carries the caption out of view.
"""

from __future__ import annotations

import unicodedata

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

CAPTION_FILL = (250, 248, 240)  # the letters: a warm white, over a black shadow and a soft dark band


def one_line_caption(value: str | None) -> str | None:
    """A caption as one line of printable text (a field validator's body); None stays None."""
    if value is None:
        return None
    value = " ".join(value.split())  # one line: newlines and runs of spaces become single spaces
    if not value:
        raise ValueError("the caption is only whitespace; give some text or leave caption out")
    if not value.isprintable():
        raise ValueError("the caption holds control characters; use plain printable text")
    return value


_TYPOGRAPHY = str.maketrans({"—": "-", "–": "-", "‐": "-", "−": "-", "«": '"', "»": '"', "\u00a0": " "})


Font = ImageFont.FreeTypeFont | ImageFont.ImageFont  # what ImageFont.load_default() returns


def _mask_bytes(font: Font, text: str) -> bytes:
    # Pillow's stub gives ImagingCore a __getitem__ but no __iter__/__len__; bytes() reads it through the
    # sequence protocol at run time, which the stub cannot express.
    return bytes(font.getmask(text))  # pyright: ignore[reportArgumentType]


def _missing_glyph(font: Font) -> bytes:
    return _mask_bytes(font, "\U0010fff0")  # a private-use code point: no font has it, so this is .notdef


def drawable_text(text: str, font: Font) -> str:
    """`text` with every character the font lacks replaced by its unaccented form, or '?' when it has none.

    Pillow's bundled font covers ASCII and a few quotes only; an empty box in a caption looks broken.
    """
    notdef = _missing_glyph(font)
    out = []
    for char in text.translate(_TYPOGRAPHY):
        if char == " " or _mask_bytes(font, char) != notdef:
            out.append(char)
            continue
        plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        out.append(plain if plain and _mask_bytes(font, plain) != notdef else "?")
    return "".join(out)


def draw_caption(image: Image.Image, text: str) -> Image.Image:
    """The caption on a soft dark band along the bottom, in Pillow's bundled font at a readable size."""
    width, height = image.size
    font_size = max(14, round(min(width, height) / 18))
    font = ImageFont.load_default(size=font_size)
    draw = ImageDraw.Draw(image)
    text = drawable_text(text, font)
    while draw.textlength(text, font=font) > width * 0.9 and font_size > 10:
        font_size -= 1
        font = ImageFont.load_default(size=font_size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    band_h = int((bottom - top) * 2.4)
    band = Image.new("L", (width, band_h), 0)
    ImageDraw.Draw(band).rectangle((0, band_h // 4, width, band_h), fill=150)
    band = band.filter(ImageFilter.GaussianBlur(band_h / 6))
    image.paste(Image.new("RGB", (width, band_h), (0, 0, 0)), (0, height - band_h), band)
    x = (width - (right - left)) / 2 - left
    y = height - band_h / 2 - (bottom + top) / 2
    shadow = max(1, font_size // 16)
    draw.text((x + shadow, y + shadow), text, font=font, fill=(0, 0, 0))
    draw.text((x, y), text, font=font, fill=CAPTION_FILL)
    return image


def caption_layer(width: int, height: int, text: str) -> Image.Image:
    """What draw_caption puts on a `width`×`height` picture, alone on a transparent layer (RGBA).

    It is drawn once over black and once over white. Everything draw_caption does blends a colour C with
    opacity a over the picture X as X·(1−a) + C·a, so a = 1 − (white − black) and C = black / a: laid over
    any picture, the layer looks the same as the caption drawn into it.
    """
    over_black = np.asarray(draw_caption(Image.new("RGB", (width, height), (0, 0, 0)), text), dtype=np.float32)
    over_white = np.asarray(draw_caption(Image.new("RGB", (width, height), (255, 255, 255)), text), dtype=np.float32)
    alpha = np.clip(1 - (over_white - over_black).mean(axis=2, keepdims=True) / 255, 0.0, 1.0)
    colour = np.where(alpha > 0, over_black / np.maximum(alpha, 1e-6), 0.0)
    rgba = np.concatenate([np.clip(colour, 0, 255), alpha * 255], axis=2)
    return Image.fromarray((rgba + 0.5).astype(np.uint8), "RGBA")


def held_band(still: Image.Image, rows: int, width: int) -> Image.Image:
    """The bottom `rows` of `still` scaled to `width` (aspect kept, even height), its top quarter fading in.

    The fade hides the seam against the moving picture behind the band; local/procedural-image's dark band
    itself starts a quarter of the way down, so no letter falls in the fade.
    """
    strip = still.convert("RGB").crop((0, still.height - rows, still.width, still.height))
    height = max(2, round(rows * width / still.width / 2) * 2)  # 4:2:0 places layers on even rows
    strip = strip.resize((width, height), Image.Resampling.LANCZOS)
    fade = max(1, height // 4)
    t = np.clip(np.arange(height, dtype=np.float32) / fade, 0.0, 1.0)
    alpha = np.repeat((t * t * (3 - 2 * t) * 255 + 0.5).astype(np.uint8)[:, None], width, axis=1)
    strip.putalpha(Image.fromarray(alpha, "L"))
    return strip


def bottom_layer(size: tuple[int, int], *, band: Image.Image | None, caption: str | None) -> Image.Image | None:
    """One layer for the bottom of `size` frames: a held band and/or a caption over it, cropped to what shows."""
    if band is None and caption is None:
        return None
    width, height = size
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    if band is not None:
        layer.alpha_composite(band, (0, height - band.height))
    if caption is not None:
        layer.alpha_composite(caption_layer(width, height, caption))
    bbox = layer.getchannel("A").getbbox()
    top = (bbox[1] // 2) * 2 if bbox else height - 2  # even, like the band
    return layer.crop((0, top, width, height))
