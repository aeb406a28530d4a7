"""Delivery loudness of the local generators' sound: a true-peak ceiling that holds in the encoded file.

EBU R128 and the streaming services measure the true peak on the decoded file, 4× oversampled. A
limiter on the samples before the encoder is not enough: peaks between samples, and the AAC encoder's
own overshoot, land above it (−0.7 dBTP from a −1 dBFS limiter was typical). So the limiter works
at 4× the rate with headroom under the limit, the encoded file is decoded and measured, and when it
still overshoots, it is encoded again with the ceiling lowered by the overshoot. Every step is
deterministic, so the same inputs still give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ..context import GeneratorContext
from ..errors import MediaProcessingError
from ..media import run_ffmpeg

TRUE_PEAK_LIMIT_DB = -1.0  # the delivery spec, on the decoded file
# Aim a little under it: meters differ in their interpolation filters by a few hundredths of a dB.
TRUE_PEAK_AIM_DB = TRUE_PEAK_LIMIT_DB - 0.1
# The first limiter ceiling leaves room for the AAC encoder's overshoot (about 0.3–0.5 dB at 160 kb/s on
# speech and music), so most encodes pass the first time.
FIRST_CEILING_DB = -1.6
LOWEST_CEILING_DB = -20.0
LOUDNESS_TOLERANCE_LU = 0.5  # how far from a loudness target an encode may land before it is corrected
MAX_ENCODES = 4
SILENCE_LUFS = -70.0  # what ebur128 reports for silence: nothing to normalise

# (gain dB, limiter ceiling dB, output path): writes one encode of the sound.
EncodeFn = Callable[[float, float, Path], Awaitable[None]]


@dataclass(frozen=True)
class Loudness:
    integrated: float  # LUFS; SILENCE_LUFS for silence
    true_peak: float  # dBTP; -inf for digital silence


def filter_path(path: Path) -> str:
    """A path as a filtergraph option value."""
    return "'" + str(path).replace("\\", "/").replace("'", r"'\''").replace(":", r"\:") + "'"


def true_peak_limiter(ceiling_db: float, rate: int) -> str:
    """Filters that hold the true peak of `rate` Hz sound at `ceiling_db`.

    At 4× the rate the limiter's samples are those of the true-peak meter, so it also catches the peaks
    between the original samples.
    """
    limit = 10 ** (max(ceiling_db, LOWEST_CEILING_DB) / 20)
    return f"aresample={4 * rate},alimiter=limit={limit:.5f}:level=false:latency=true,aresample={rate}"


def read_r128(metadata: Path) -> Loudness:
    """The last integrated loudness and true peak ebur128 printed (each block repeats the running values)."""
    values: dict[str, str] = {}
    for line in metadata.read_text().splitlines():
        key, _, value = line.partition("=")
        values[key] = value
    integrated = float(values.get("lavfi.r128.I", SILENCE_LUFS))
    peak = float(values.get("lavfi.r128.true_peak", 0.0))  # linear, not dB
    return Loudness(
        integrated if integrated > SILENCE_LUFS else SILENCE_LUFS,
        20 * math.log10(peak) if peak > 0 else -math.inf,
    )


def measure_args(path: Path, metadata: Path) -> list[str]:
    """ffmpeg arguments that decode `path`'s first audio stream and print its loudness and true peak to `metadata`."""
    # Half a second of silence after the end puts the last samples inside a reported 100 ms block;
    # silence is below every gate, so it changes neither value.
    chain = f"apad=pad_dur=0.5,ebur128=peak=true:metadata=1,ametadata=mode=print:file={filter_path(metadata)}"
    return ["-i", str(path), "-map", "0:a:0", "-af", chain, "-f", "null", "-"]


async def measure_file(path: Path, context: GeneratorContext) -> Loudness:
    """Integrated loudness and true peak of the decoded first audio stream of `path`."""
    metadata = context.temp_path(".txt")
    await run_ffmpeg(measure_args(path, metadata), what="true-peak check")
    return read_r128(metadata)


def next_encode(
    got: Loudness, ceiling_db: float, gain_db: float, target_lufs: float | None, *, last: bool
) -> tuple[float, float] | None:
    """The (ceiling, gain) for another encode after one that measured `got`, or None when that one will do.

    With `target_lufs`, an encode that lands more than LOUDNESS_TOLERANCE_LU away is redone with the gain
    corrected (a lower ceiling limits more, which takes a little loudness with it), except the last.
    """
    over = got.true_peak - TRUE_PEAK_AIM_DB
    off = target_lufs - got.integrated if target_lufs is not None and got.integrated > SILENCE_LUFS else 0.0
    if over <= 0 and (abs(off) <= LOUDNESS_TOLERANCE_LU or last):
        return None
    if over > 0:
        ceiling_db -= over + 0.1  # the encoder's overshoot grows with its input's level: step past the excess
    if abs(off) > LOUDNESS_TOLERANCE_LU:
        gain_db += off
    return ceiling_db, gain_db


async def encode_within_true_peak(
    encode: EncodeFn,
    context: GeneratorContext,
    *,
    suffix: str,
    gain_db: float = 0.0,
    target_lufs: float | None = None,
) -> tuple[Path, Loudness]:
    """Encode the sound until its decoded true peak is under the limit; return the file and what it measured."""
    ceiling, overshoot = FIRST_CEILING_DB, 0.0
    for attempt in range(MAX_ENCODES):
        out = context.temp_path(suffix)
        await encode(gain_db, ceiling, out)
        got = await measure_file(out, context)
        retry = next_encode(got, ceiling, gain_db, target_lufs, last=attempt == MAX_ENCODES - 1)
        if retry is None:
            return out, got
        ceiling, gain_db = retry
        overshoot = got.true_peak - TRUE_PEAK_AIM_DB
    # Still over after every lowered ceiling (sound the encoder overshoots badly): turn it all down.
    out = context.temp_path(suffix)
    await encode(gain_db - overshoot - 0.5, ceiling, out)
    got = await measure_file(out, context)
    if got.true_peak > TRUE_PEAK_AIM_DB:
        raise MediaProcessingError(
            f"the encoded sound still peaks at {got.true_peak:.2f} dBTP after {MAX_ENCODES + 1} encodes, "
            f"above the {TRUE_PEAK_LIMIT_DB:g} dBTP delivery limit.",
            hint="Lower the loudness target or the sources' volume and run again.",
        )
    return out, got
