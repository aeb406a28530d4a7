"""Audio helpers shared by the local speech, music and mix generators: WAV writing, encoding, decoding."""

from __future__ import annotations

import wave
from enum import StrEnum
from pathlib import Path

import numpy as np

from ..context import GeneratorContext
from ..errors import ArtifactDecodeError
from ..media import BITEXACT, run_ffmpeg


class AudioFormat(StrEnum):
    """Container/codec of an audio output."""

    WAV = "wav"
    MP3 = "mp3"
    OGG = "ogg"


# Codec settings per output format. libmp3lame and libvorbis are deterministic for the same samples;
# BITEXACT (in encode_audio) fixes the Ogg stream serial number and drops the encoder-version tag.
_CODEC_ARGS = {
    AudioFormat.MP3: ["-c:a", "libmp3lame", "-b:a", "192k"],
    AudioFormat.OGG: ["-c:a", "libvorbis", "-q:a", "5"],
}


_WRITE_FRAMES = 1 << 16


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] (frames × channels, or mono) as interleaved little-endian 16-bit PCM."""
    clipped = np.clip(samples, -1.0, 1.0)
    return np.round(clipped * 32767.0).astype("<i2").tobytes()


class WavWriter:
    """Writes 16-bit PCM WAV chunk by chunk, so long renders never hold the whole file in memory."""

    def __init__(self, path: Path, *, sample_rate: int, channels: int) -> None:
        self.path = path
        self.channels = channels
        self._wav = wave.open(str(path), "wb")  # noqa: SIM115 — closed by close() / __exit__
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self.frames = 0

    def write(self, samples: np.ndarray) -> None:
        if samples.ndim == 1:
            samples = samples[:, None]
        if samples.shape[1] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {samples.shape[1]}")
        for start in range(0, len(samples), _WRITE_FRAMES):  # bounded temporaries, however long the input
            self._wav.writeframes(to_pcm16(samples[start : start + _WRITE_FRAMES]))
        self.frames += samples.shape[0]

    def close(self) -> None:
        self._wav.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write float samples (mono, or frames × channels) as a 16-bit PCM WAV file."""
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with WavWriter(path, sample_rate=sample_rate, channels=channels) as writer:
        writer.write(samples)
    return path


async def encode_audio(wav: Path, fmt: AudioFormat, ctx: GeneratorContext, *, duration: float, what: str) -> Path:
    """The WAV itself for `wav`, else the file re-encoded as MP3/Ogg Vorbis by ffmpeg (progress forwarded)."""
    if fmt is AudioFormat.WAV:
        return wav
    out = ctx.temp_path(f".{fmt.value}")
    await run_ffmpeg(
        ["-i", str(wav), *_CODEC_ARGS[fmt], *BITEXACT, str(out)],
        duration=duration,
        progress=ctx.publish_progress,
        what=what,
    )
    return out


def decode_mono(path: Path, sample_rate: int) -> np.ndarray:
    """Decode any audio file to mono float32 at `sample_rate` (PyAV), for analysis rather than playback."""
    import av
    from av.error import FFmpegError

    chunks: list[np.ndarray] = []
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ArtifactDecodeError(f"{path.name} has no audio stream.")
            for frame in container.decode(audio=0):
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except FFmpegError as exc:
        raise ArtifactDecodeError(f"{path.name} does not decode as audio ({exc}).") from exc
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
