"""local/music: a procedural music bed (pad chords, bass, arpeggio, drums) synthesised with NumPy."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..artifacts import AudioArtifact
from ..base import BaseGenerator
from ..context import GeneratorContext
from . import _synth as syn
from ._arrange import KEYS, STYLES, Mood, Piece, arrange
from ._audio import AudioFormat, WavWriter, encode_audio

_FLATS = {"DB": "C#", "EB": "D#", "GB": "F#", "AB": "G#", "BB": "A#"}
MASTER_GAIN = 0.55  # about -18 dBFS RMS: headroom for the drums' peaks, room for a mix on top


class Key(StrEnum):
    """Tonic of the piece (sharps; flats such as "Bb" are accepted and mapped to their sharp)."""

    C = "C"
    C_SHARP = "C#"
    D = "D"
    D_SHARP = "D#"
    E = "E"
    F = "F"
    F_SHARP = "F#"
    G = "G"
    G_SHARP = "G#"
    A = "A"
    A_SHARP = "A#"
    B = "B"


class Scale(StrEnum):
    MAJOR = "major"
    MINOR = "minor"


class MusicInput(BaseModel):
    """Inputs of local/music."""

    model_config = ConfigDict(extra="forbid")

    duration: float = Field(default=30.0, ge=1.0, le=600.0, description="Length in seconds (1–600), exact.")
    mood: Mood = Field(default=Mood.CALM, description="Shapes the chord progression, sounds, bass line and drums.")
    key: Key = Field(default=Key.C, description="Tonic: C, C#, D … B (flats like Bb are accepted).")
    scale: Scale = Field(default=Scale.MAJOR, description="major or minor.")
    tempo: int | None = Field(
        default=None, ge=50, le=200, description="Beats per minute (50–200); empty picks the mood's own tempo."
    )
    seed: int = Field(
        default=0, ge=0, le=2**32 - 1, description="Picks the progression and melody; same seed, same bytes."
    )
    sample_rate: Literal[44100, 48000] = Field(default=48000, description="44100 or 48000 Hz (stereo).")
    fade_in: float = Field(default=1.0, ge=0.0, le=30.0, description="Fade-in at the start, seconds.")
    fade_out: float = Field(default=2.0, ge=0.0, le=30.0, description="Fade-out at the end, seconds.")
    format: AudioFormat = Field(default=AudioFormat.WAV, description="Output file format.")

    @model_validator(mode="before")
    @classmethod
    def _accept_flats(cls, data):
        if isinstance(data, dict) and isinstance(data.get("key"), str):
            key = data["key"].strip()
            data = {**data, "key": _FLATS.get(key.upper(), key[:1].upper() + key[1:])}
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.fade_in + self.fade_out > self.duration:
            raise ValueError(
                f"fade_in + fade_out ({self.fade_in + self.fade_out:g} s) is longer than the "
                f"duration ({self.duration:g} s); shorten the fades"
            )
        return self


class MusicOutput(BaseModel):
    audio: AudioArtifact


def render(inputs: MusicInput, path: Path) -> float:
    """Synthesise the piece into a 16-bit stereo WAV at `path`, streaming; returns its duration in seconds."""
    sr = inputs.sample_rate
    total = round(inputs.duration * sr)
    piece = Piece(
        inputs.duration, inputs.mood, KEYS.index(inputs.key.value), inputs.scale.value, inputs.tempo, inputs.seed, sr
    )
    events, ir = arrange(piece)
    style = STYLES[inputs.mood]
    fade_in, fade_out = round(inputs.fade_in * sr), round(inputs.fade_out * sr)
    position = 0
    with WavWriter(path, sample_rate=sr, channels=2) as wav:
        for chunk in syn.mix_stream(events, total, ir=ir, wet=style.reverb):
            index = np.arange(position, position + len(chunk))
            gain = np.ones(len(chunk), dtype=np.float32)
            if fade_in:
                gain = np.minimum(gain, np.clip(index / fade_in, 0, 1))
            if fade_out:
                gain = np.minimum(gain, np.clip((total - index) / fade_out, 0, 1))
            wav.write(_soft_clip(chunk * (MASTER_GAIN * gain**2)[:, None]))  # squared ramps: fades that sound even
            position += len(chunk)
    return total / sr


def _soft_clip(x: np.ndarray, knee: float = 0.7) -> np.ndarray:
    """Linear below `knee`, then a tanh curve that approaches ±1 but never crosses it: no hard clipping."""
    over = np.abs(x) > knee
    y = x.copy()
    y[over] = np.sign(x[over]) * (knee + (1 - knee) * np.tanh((np.abs(x[over]) - knee) / (1 - knee)))
    return y


class ProceduralMusic(BaseGenerator):
    name = "local/music"
    artifact_type = "audio"
    description = "A procedural music bed (chords, bass, arpeggio, drums) in a chosen key, tempo and mood; offline."

    def get_input_schema(self) -> type[MusicInput]:
        return MusicInput

    def get_output_schema(self) -> type[MusicOutput]:
        return MusicOutput

    async def estimate_cost(self, inputs: MusicInput) -> Decimal:
        return Decimal("0")

    async def generate(self, inputs: MusicInput, context: GeneratorContext) -> MusicOutput:
        started = time.perf_counter()
        context.publish_progress(0.0, "synthesising music")
        wav = context.temp_path(".wav")
        duration = await asyncio.to_thread(render, inputs, wav)
        context.publish_progress(0.7, "encoding")
        path = await encode_audio(wav, inputs.format, context, duration=duration, what="music encode")
        artifact = await context.store_audio_result(path, format=inputs.format.value)
        context.record_compute_seconds(time.perf_counter() - started)
        context.publish_progress(1.0, "done")
        return MusicOutput(audio=artifact)
