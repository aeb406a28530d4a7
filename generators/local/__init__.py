"""Offline generators that do real media work with no key and no network."""

from __future__ import annotations

from .concat import ConcatGenerator
from .image_resize import ImageResizeGenerator
from .ken_burns import KenBurnsGenerator
from .procedural_image import ProceduralImageGenerator

LOCAL_GENERATORS: list[type] = [
    ProceduralImageGenerator,
    ImageResizeGenerator,
    KenBurnsGenerator,
    ConcatGenerator,
]
