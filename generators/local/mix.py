"""local/mix: lay narration and music under a video — ducking, EBU R128 loudness, fades, length policy."""

from __future__ import annotations

import asyncio
import math
import time
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..artifacts import AudioArtifact, VideoArtifact
from ..base import BaseGenerator
from ..context import GeneratorContext
from ..media import AAC, BITEXACT, H264, ProgressFn, run_ffmpeg
from ._audio import decode_mono
from ._loudness import SILENCE_LUFS, encode_within_true_peak, filter_path, read_r128, true_peak_limiter
from ._video import BT709_TAGS, TAG_BT709, TO_BT709

RATE = 48000  # output audio sample rate
GAIN_RATE = 1000  # control rate of the ducking gain track


class LengthPolicy(StrEnum):
    SHORTEST = "shortest"
    VIDEO = "video"
    LONGEST = "longest"


class VideoExtension(StrEnum):
    FREEZE = "freeze"
    LOOP = "loop"


class VideoAudio(StrEnum):
    DROP = "drop"
    KEEP = "keep"


class MixInput(BaseModel):
    """Inputs of local/mix."""

    model_config = ConfigDict(extra="forbid")

    video: VideoArtifact = Field(description="The picture. Its own sound is dropped unless video_audio=keep.")
    video_audio: VideoAudio = Field(
        default=VideoAudio.DROP,
        description="drop: replace the video's own sound; keep: mix it in like narration (music ducks under it).",
    )
    narration: AudioArtifact | None = Field(default=None, description="Speech laid on top; music ducks under it.")
    music: AudioArtifact | None = Field(default=None, description="A music bed under the whole video.")
    narration_volume_db: float = Field(default=0.0, ge=-30.0, le=20.0, description="Gain on the narration, dB.")
    music_volume_db: float = Field(default=-8.0, ge=-40.0, le=20.0, description="Gain on the music, dB.")
    narration_offset: float = Field(
        default=0.0, ge=0.0, le=3600.0, description="Seconds of picture before the narration starts."
    )
    ducking: bool = Field(default=True, description="Lower the music while the narration speaks.")
    duck_db: float = Field(
        default=12.0, ge=6.0, le=40.0, description="How far the music drops under speech, dB (at least 6)."
    )
    normalize: bool = Field(default=True, description="Bring the mix to target_lufs (EBU R128 integrated).")
    target_lufs: float = Field(
        default=-16.0,
        ge=-36.0,
        le=-8.0,
        description="Integrated loudness of the result, LUFS (-16 suits web video, -23 broadcast).",
    )
    fade_in: float = Field(default=0.5, ge=0.0, le=30.0, description="Audio fade-in at the start, seconds.")
    fade_out: float = Field(default=1.0, ge=0.0, le=30.0, description="Audio fade-out at the end, seconds.")
    fade_picture: bool = Field(default=False, description="Also fade the picture from and to black.")
    length: LengthPolicy = Field(
        default=LengthPolicy.VIDEO,
        description="shortest: end with the first of picture and sound; video: the "
        "video's length; longest: until both end.",
    )
    extend_video: VideoExtension = Field(
        default=VideoExtension.FREEZE,
        description="With length=longest, how the picture fills extra time: freeze its last frame or loop it.",
    )
    loop_music: bool = Field(default=False, description="Repeat the music until the end instead of letting it stop.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.video_audio is VideoAudio.KEEP and not self.video.has_audio:
            raise ValueError("video_audio=keep, but the video has no audio track to keep; use drop")
        if self.narration is None and self.music is None and self.video_audio is VideoAudio.DROP:
            raise ValueError("give narration, music or both (or video_audio=keep): there is nothing to mix")
        total = self.output_duration()
        if self.narration is not None and self.narration_offset >= total:
            raise ValueError(
                f"narration_offset {self.narration_offset:g} s starts after the result ends "
                f"({total:.2f} s with length={self.length.value}); lower it or use length=longest"
            )
        if self.fade_in + self.fade_out > total:
            raise ValueError(
                f"fade_in + fade_out ({self.fade_in + self.fade_out:g} s) is longer than the result "
                f"({total:.2f} s); shorten the fades"
            )
        return self

    def audio_end(self) -> float:
        """When the last sound ends, seconds; infinite for looped music alone."""
        ends = [self.narration_offset + self.narration.duration] if self.narration is not None else []
        if self.video_audio is VideoAudio.KEEP:
            ends.append(self.video.duration)
        if self.music is not None and not self.loop_music:
            ends.append(self.music.duration)
        return max(ends, default=math.inf)

    def output_duration(self) -> float:
        video, audio = self.video.duration, self.audio_end()
        if self.length is LengthPolicy.VIDEO or audio == math.inf:
            return video
        return min(video, audio) if self.length is LengthPolicy.SHORTEST else max(video, audio)


class MixOutput(BaseModel):
    video: VideoArtifact


def ducking_gain(narration: np.ndarray, rate: int, *, offset: float, duration: float, depth_db: float) -> np.ndarray:
    """Gain for the music at GAIN_RATE Hz over the output: 1 where nobody speaks, -depth_db dB under speech.

    Knowing the whole narration in advance lets the music dip *before* each phrase, and pauses shorter than
    0.6 s keep it down, so it does not pump between words.
    """
    frame = rate // 100  # 10 ms analysis frames
    n_frames = len(narration) // frame
    rms = np.sqrt(np.mean(narration[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1) + 1e-12)
    level = 20 * np.log10(rms)
    voiced = level > -90
    reference = np.percentile(level[voiced], 95) if voiced.any() else 0.0
    active = (level > reference - 30) & (level > -60)  # relative gate: robust to how loud the voice was recorded
    n = round(duration * GAIN_RATE)
    start = min(round(offset * GAIN_RATE), n)
    speaking = np.repeat(active, GAIN_RATE // 100)[: n - start]  # 10 ms frames → GAIN_RATE samples, on the output clock
    mask = np.zeros(n, dtype=bool)
    mask[start : start + len(speaking)] = speaking
    half_gap = int(0.3 * GAIN_RATE)
    mask = ~_widen(~_widen(mask, half_gap, half_gap), half_gap, half_gap)  # close pauses under 0.6 s
    mask = _widen(mask, before=int(0.15 * GAIN_RATE), after=int(0.25 * GAIN_RATE))
    window = np.hanning(int(0.1 * GAIN_RATE) + 1)
    gain_db = np.convolve(-depth_db * mask, window / window.sum(), mode="same")
    return (10 ** (gain_db / 20)).astype(np.float32)


def _widen(mask: np.ndarray, before: int, after: int) -> np.ndarray:
    """True wherever `mask` is true within `before` samples ahead or `after` samples behind."""
    counts = np.concatenate([[0], np.cumsum(mask)])
    i = np.arange(len(mask))
    return counts[np.clip(i + before + 1, 0, len(mask))] - counts[np.clip(i - after, 0, len(mask))] > 0


class Mixer:
    """Builds the ffmpeg runs of one mix: measure the loudness of the sound, encode the sound with the gain
    (again with a lower ceiling if its true peak overshoots), then encode the picture under that sound."""

    def __init__(self, inputs: MixInput, paths: dict[str, Path], gain_track: Path | None) -> None:
        self.inputs = inputs
        self.paths = paths
        self.gain_track = gain_track
        self.duration = inputs.output_duration()
        self.samples = round(self.duration * RATE)
        # Every source is padded (or cut) to the output's exact length before it meets another. ffmpeg reads
        # its inputs on separate threads, and amix/amultiply given sources of different lengths finish by
        # whichever EOF arrives first: now and then the mix ended with the narration and the music fell silent.
        self.fit = f"apad=whole_len={self.samples},atrim=end_sample={self.samples}"

    def audio_args(self, first_index: int) -> tuple[list[str], str]:
        """ffmpeg input arguments for the audio sources and a filtergraph that ends in [mixed]."""
        args: list[str] = []
        graph: list[str] = []
        labels: list[str] = []
        index = first_index
        fmt = f"aresample={RATE},aformat=sample_fmts=fltp:channel_layouts=stereo"
        fit = self.fit
        if self.inputs.video_audio is VideoAudio.KEEP:
            args += ["-vn", "-i", str(self.paths["video"])]
            graph.append(f"[{index}:a]{fmt},{fit}[kept]")
            labels.append("[kept]")
            index += 1
        if self.inputs.narration is not None:
            args += ["-i", str(self.paths["narration"])]
            delay = round(self.inputs.narration_offset * RATE)
            graph.append(
                f"[{index}:a]{fmt},volume={self.inputs.narration_volume_db}dB,adelay=delays={delay}S:all=1,{fit}[narration]"
            )
            labels.append("[narration]")
            index += 1
        if self.inputs.music is not None:
            args += (["-stream_loop", "-1"] if self.inputs.loop_music else []) + ["-i", str(self.paths["music"])]
            chain = f"[{index}:a]{fmt},volume={self.inputs.music_volume_db}dB,{fit}"
            index += 1
            if self.gain_track is not None:
                args += ["-f", "f32le", "-ar", str(GAIN_RATE), "-ac", "1", "-i", str(self.gain_track)]
                graph.append(f"{chain}[music_in]")
                graph.append(f"[{index}:a]{fmt},{fit}[duck]")
                chain = "[music_in][duck]amultiply"
                index += 1
            graph.append(f"{chain}[music]")
            labels.append("[music]")
        mixed = (
            f"{''.join(labels)}amix=inputs={len(labels)}:duration=first:normalize=0:dropout_transition=0"
            if len(labels) > 1
            else f"{labels[0]}anull"
        )
        fades = [f"afade=t=in:d={self.inputs.fade_in}:curve=qsin"] if self.inputs.fade_in else []
        if self.inputs.fade_out:
            fades.append(f"afade=t=out:st={self.duration - self.inputs.fade_out}:d={self.inputs.fade_out}:curve=qsin")
        graph.append(f"{','.join([mixed, *fades])}[mixed]")  # every source is already the output's length
        return args, ";".join(graph)

    def measure_args(self, metadata: Path) -> list[str]:
        args, graph = self.audio_args(0)
        graph += f";[mixed]ebur128=metadata=1,ametadata=mode=print:key=lavfi.r128.I:file={filter_path(metadata)}[out]"
        return [*args, "-filter_complex", graph, "-map", "[out]", "-f", "null", "-"]

    def sound_args(self, gain_db: float, ceiling_db: float, out: Path) -> list[str]:
        """The sound of the result: the mix at `gain_db`, its true peak held at `ceiling_db`, encoded AAC."""
        args, graph = self.audio_args(0)
        graph += f";[mixed]volume={gain_db:.3f}dB,{true_peak_limiter(ceiling_db, RATE)},{self.fit}[a]"
        return [*args, "-filter_complex", graph, "-map", "[a]", *AAC, "-ar", str(RATE), *BITEXACT, str(out)]

    def encode_args(self, sound: Path, out: Path) -> list[str]:
        """The picture, encoded under the sound from sound_args, which is copied as it is: its true peak was
        measured on exactly these AAC frames."""
        video = self.inputs.video
        loop = self.inputs.length is LengthPolicy.LONGEST and self.inputs.extend_video is VideoExtension.LOOP
        args = [*(["-stream_loop", "-1"] if loop else []), "-i", str(self.paths["video"]), "-i", str(sound)]
        # Even sizes (4:2:0 needs them) and the BT.709 matrix, whatever the source's: the output is tagged so.
        chain = [f"scale=trunc(iw/2)*2:trunc(ih/2)*2:{TO_BT709}", "format=yuv420p"]
        extra = self.duration - video.duration
        if extra > 0 and not loop:
            chain.insert(0, f"tpad=stop_mode=clone:stop_duration={extra + 1:.3f}")
        if self.inputs.fade_picture:
            if self.inputs.fade_in:
                chain.append(f"fade=t=in:d={self.inputs.fade_in}")
            if self.inputs.fade_out:
                chain.append(f"fade=t=out:st={self.duration - self.inputs.fade_out}:d={self.inputs.fade_out}")
        chain.append(TAG_BT709)
        maps = ["-map", "[v]", "-map", "1:a:0", "-t", f"{self.duration}"]
        codecs = [*H264, *BT709_TAGS, "-c:a", "copy", *BITEXACT]
        return [*args, "-filter_complex", f"[0:v]{','.join(chain)}[v]", *maps, *codecs, str(out)]


class _Progress:
    """Forwards each ffmpeg run's progress into its share of the whole, never backwards (a re-encode of the
    sound restarts its run's count)."""

    def __init__(self, context: GeneratorContext) -> None:
        self.context = context
        self.reached = 0.0

    def between(self, start: float, end: float) -> ProgressFn:
        def publish(fraction: float, message: str) -> None:
            self.reached = max(self.reached, start + (end - start) * fraction)
            self.context.publish_progress(self.reached, message)

        return publish


class AudioMix(BaseGenerator):
    name = "local/mix"
    artifact_type = "video"
    version = "2"  # 2: sound at <= -1 dBTP, full BT.709 tags
    description = (
        "Narration and music under a video: music ducks under speech, EBU R128 loudness, fades, "
        "length policy; H.264/AAC MP4."
    )

    def get_input_schema(self) -> type[MixInput]:
        return MixInput

    def get_output_schema(self) -> type[MixOutput]:
        return MixOutput

    async def estimate_cost(self, inputs: MixInput) -> Decimal:
        return Decimal("0")

    async def generate(self, inputs: MixInput, context: GeneratorContext) -> MixOutput:
        started = time.perf_counter()
        paths = {"video": await context.resolve_artifact(inputs.video)}
        for name in ("narration", "music"):
            if (artifact := getattr(inputs, name)) is not None:
                paths[name] = await context.resolve_artifact(artifact)
        duration = inputs.output_duration()
        gain_track = None
        speech_sources = [(paths["narration"], inputs.narration_offset)] if inputs.narration is not None else []
        if inputs.video_audio is VideoAudio.KEEP:
            speech_sources.append((paths["video"], 0.0))
        if inputs.ducking and speech_sources and inputs.music is not None:
            context.publish_progress(0.0, "finding speech")
            gains = []
            for source, offset in speech_sources:
                speech = await asyncio.to_thread(decode_mono, source, 8000)
                gains.append(ducking_gain(speech, 8000, offset=offset, duration=duration, depth_db=inputs.duck_db))
            gain = np.minimum.reduce(gains)  # the music ducks under whichever source speaks
            gain_track = context.temp_path(".f32")
            gain.tofile(gain_track)
        mixer = Mixer(inputs, paths, gain_track)
        progress = _Progress(context)
        gain_db, target = 0.0, None
        if inputs.normalize:
            metadata = context.temp_path(".txt")
            await run_ffmpeg(
                mixer.measure_args(metadata),
                duration=duration,
                what="loudness measurement",
                progress=progress.between(0.0, 0.1),
            )
            measured = read_r128(metadata).integrated
            if measured > SILENCE_LUFS:
                gain_db, target = inputs.target_lufs - measured, inputs.target_lufs

        async def encode_sound(gain: float, ceiling: float, path: Path) -> None:
            await run_ffmpeg(
                mixer.sound_args(gain, ceiling, path),
                duration=duration,
                what="mix sound",
                progress=progress.between(0.1, 0.2),
            )

        sound, _ = await encode_within_true_peak(
            encode_sound, context, suffix=".m4a", gain_db=gain_db, target_lufs=target
        )
        out = context.temp_path(".mp4")
        await run_ffmpeg(
            mixer.encode_args(sound, out), duration=duration, what="mix encode", progress=progress.between(0.2, 1.0)
        )
        artifact = await context.store_video_result(out, format="mp4")
        context.record_compute_seconds(time.perf_counter() - started)
        context.publish_progress(1.0, "done")
        return MixOutput(video=artifact)
