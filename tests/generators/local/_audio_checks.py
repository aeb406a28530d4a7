"""Helpers for the speech, music and mix tests: make real inputs with ffmpeg, decode outputs, measure what ears hear."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pyloudnorm

from generators.artifacts import AudioArtifact, VideoArtifact
from generators.context import GeneratorContext
from generators.media import BITEXACT, H264, ffmpeg_exe, run_ffmpeg

DELIVERY_TRUE_PEAK_DB = -1.0  # EBU R128 / streaming delivery specs: no decoded sample may pass it, oversampled


@dataclass
class Decoded:
    samples: np.ndarray  # float64, frames × channels
    rate: int
    duration: float  # decoded frames / rate

    @property
    def mono(self) -> np.ndarray:
        return self.samples.mean(axis=1)

    def window(self, start: float, end: float) -> np.ndarray:
        return self.mono[int(start * self.rate) : int(end * self.rate)]


def decode_audio(path: Path) -> Decoded:
    """Every sample of the first audio stream (of an audio or a video file)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray() for f in container.decode(stream)]
        rate = stream.codec_context.sample_rate
        fmt = stream.codec_context.format
        channels = stream.codec_context.layout.nb_channels
    data = np.concatenate(frames, axis=1)
    samples = (data.T if fmt.is_planar else data.reshape(-1, channels)).astype(np.float64)
    if fmt.name.startswith(("s16", "s32")):  # integer PCM to [-1, 1]
        samples /= 2.0 ** (8 * fmt.bytes - 1)
    return Decoded(samples, rate, len(samples) / rate)


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x))) + 1e-12))


def integrated_lufs(decoded: Decoded) -> float:
    return float(pyloudnorm.Meter(decoded.rate).integrated_loudness(decoded.samples))


@dataclass(frozen=True)
class R128:
    integrated: float  # LUFS
    true_peak: float  # dBTP


def measuring_ffmpeg() -> str:
    """Debian's ffmpeg where it is installed, as a meter independent of the generators' own binary; else theirs."""
    return shutil.which("ffmpeg") or ffmpeg_exe()


def r128(path: Path) -> R128:
    """Integrated loudness and true peak of the decoded first audio stream, by ffmpeg's ebur128 with peak=true.

    peak=true is ebur128's true-peak meter (4× oversampled). Its per-100 ms metadata carry three decimals,
    where the summary it logs rounds to one; half a second of silence after the end makes the last
    samples fall in a reported block (silence is below every gate, so it changes neither number).
    """
    with tempfile.TemporaryDirectory(prefix="r128-") as scratch:
        metadata = Path(scratch) / "r128.txt"
        chain = f"apad=pad_dur=0.5,ebur128=peak=true:metadata=1,ametadata=mode=print:file={metadata}"
        subprocess.run(
            [measuring_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path)]
            + ["-map", "0:a:0", "-af", chain, "-f", "null", "-"],
            check=True,
        )
        values: dict[str, str] = {}
        for line in metadata.read_text().splitlines():
            key, _, value = line.partition("=")
            values[key] = value  # each block repeats the running values: the last one is the whole file's
    peak = float(values["lavfi.r128.true_peak"])
    return R128(float(values["lavfi.r128.I"]), 20 * np.log10(peak) if peak > 0 else -np.inf)


def oversampled_peak_db(samples: np.ndarray, factor: int = 4) -> float:
    """Peak between the samples too: the band-limited (FFT) interpolation at `factor`× the rate, dBFS."""
    n = len(samples)
    upsampled = np.fft.irfft(np.fft.rfft(samples, axis=0), n * factor, axis=0) * factor
    return float(20 * np.log10(np.abs(upsampled).max() + 1e-12))


def tone_level_db(x: np.ndarray, rate: int, frequency: float, width: float = 40.0) -> float:
    """Level of the narrow band around `frequency` in `x` (Hann-windowed spectrum), dB."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    band = np.abs(freqs - frequency) < width / 2
    return float(20 * np.log10(np.sqrt(np.sum(spectrum[band] ** 2)) / len(x) + 1e-12))


def sounding_span(x: np.ndarray, rate: int, floor_db: float = -45.0) -> tuple[float, float]:
    """First and last moment (s) a 10 ms frame of `x` is louder than `floor_db`."""
    hop = rate // 100
    n = len(x) // hop
    levels = 20 * np.log10(np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1)) + 1e-12)
    loud = np.flatnonzero(levels > floor_db)
    return loud[0] / 100, (loud[-1] + 1) / 100


def fundamental_hz(x: np.ndarray, rate: int) -> float:
    """Median pitch of the voiced 40 ms frames, by autocorrelation between 60 and 500 Hz."""
    hop = int(0.04 * rate)
    pitches = []
    for start in range(0, len(x) - hop, hop):
        frame = x[start : start + hop] - x[start : start + hop].mean()
        if rms_db(frame) < -35:
            continue
        ac = np.correlate(frame, frame, "full")[hop - 1 :]
        lo, hi = int(rate / 500), int(rate / 60)
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            pitches.append(rate / lag)
    return float(np.median(pitches))


def beat_period(x: np.ndarray, rate: int) -> float:
    """The strongest repetition period (0.25–1.5 s) of the onsets in `x`, seconds."""
    hop = rate // 100
    n = len(x) // hop
    energy = np.log10(np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1)) + 1e-6)
    onsets = np.maximum(np.diff(energy), 0)
    onsets -= onsets.mean()
    ac = np.correlate(onsets, onsets, "full")[len(onsets) - 1 :]
    lags = np.arange(len(ac)) / 100
    allowed = (lags >= 0.25) & (lags <= 1.5)
    return float(lags[allowed][np.argmax(ac[allowed])])


def pitch_class_energy(x: np.ndarray, rate: int, low: float = 100.0, high: float = 2000.0) -> np.ndarray:
    """Share of spectral energy per pitch class (0 = C … 11 = B) between `low` and `high` Hz."""
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    band = (freqs > low) & (freqs < high)
    classes = np.round(12 * np.log2(freqs[band] / 440.0) + 69).astype(int) % 12
    energy = np.bincount(classes, weights=power[band], minlength=12)
    return energy / energy.sum()


def strong_peaks(x: np.ndarray, rate: int, within_db: float = 30.0) -> int:
    """How many local maxima of the average spectrum lie within `within_db` of the strongest."""
    n = len(x) // 4096 * 4096
    segments = x[:n].reshape(-1, 4096) * np.hanning(4096)
    power = 10 * np.log10(np.mean(np.abs(np.fft.rfft(segments, axis=1)) ** 2, axis=0) + 1e-12)
    inner = power[1:-1]
    return int(np.sum((inner > power[:-2]) & (inner > power[2:]) & (inner > power.max() - within_db)))


def share_near_strongest(x: np.ndarray, rate: int) -> float:
    """Share of the energy within a semitone of the strongest frequency: 1.0 for a pure tone."""
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    strongest = freqs[np.argmax(power)]
    near = np.abs(12 * np.log2(np.maximum(freqs, 1.0) / strongest)) < 1
    return float(power[near].sum() / power.sum())


async def make_test_video(
    ctx: GeneratorContext, seconds: float, *, size: str = "160x120", fps: int = 25
) -> VideoArtifact:
    """A moving ffmpeg test pattern with no sound, stored in the context's store."""
    out = ctx.temp_path(".mp4")
    await run_ffmpeg(
        ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}:duration={seconds}", *H264, *BITEXACT, str(out)]
    )
    return await ctx.store_video_result(out)


async def make_tone(ctx: GeneratorContext, seconds: float, frequency: float, *, volume: float = 0.3) -> AudioArtifact:
    """A steady stereo sine at 48 kHz, stored as WAV."""
    out = ctx.temp_path(".wav")
    await run_ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={frequency}:sample_rate=48000:duration={seconds}",
            "-af",
            f"volume={volume},aformat=channel_layouts=stereo",
            str(out),
        ]
    )
    return await ctx.store_audio_result(out)
