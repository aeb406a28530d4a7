"""Offline generators that do real media work with no key and no network."""

from __future__ import annotations

from .concat import ConcatGenerator
from .image_resize import ImageResizeGenerator
from .ken_burns import KenBurnsGenerator
from .mix import AudioMix
from .music import ProceduralMusic
from .procedural_image import ProceduralImageGenerator
from .text_template import TextTemplate
from .tts import ESpeakTTS

LOCAL_GENERATORS: list[type] = [
    ProceduralImageGenerator,
    ImageResizeGenerator,
    KenBurnsGenerator,
    ConcatGenerator,
    ESpeakTTS,
    ProceduralMusic,
    AudioMix,
    TextTemplate,
]
