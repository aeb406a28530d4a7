"""local/concat: join 2–20 videos with transitions, normalising size and frame rate, with optional music under.

Each clip is brought to the output size (scaled to fit, padded black, square pixels), the output frame
rate and exactly its own length (last frame held if its video ends early). Transitions are ffmpeg
`xfade` with `acrossfade` on the sound; "cut" uses `concat`. Clips without sound get silence so every
transition has two sides. The transition length is rounded to whole frames, so the output lasts
sum(clips) − (n−1) × transition, to the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Self

from pydantic import BaseModel, Field, model_validator

from ..artifacts import AudioArtifact, VideoArtifact
from ..base import BaseGenerator
from ..context import GeneratorContext
from ..media import AAC, BITEXACT, H264
from ._loudness import encode_within_true_peak, true_peak_limiter
from ._video import BT709_TAGS, TAG_BT709, TO_BT709, FrameRate, VideoResolution, even, rate_fraction, run_timed_ffmpeg

SAMPLE_RATE = 48000
MUSIC_FADE_IN = 0.5


class Transition(StrEnum):
    """Names are ffmpeg's xfade transitions, except 'cut' (no overlap)."""

    CUT = "cut"
    FADE = "fade"
    DISSOLVE = "dissolve"
    FADEBLACK = "fadeblack"
    FADEWHITE = "fadewhite"
    WIPELEFT = "wipeleft"
    WIPERIGHT = "wiperight"
    WIPEUP = "wipeup"
    WIPEDOWN = "wipedown"
    SLIDELEFT = "slideleft"
    SLIDERIGHT = "slideright"
    SLIDEUP = "slideup"
    SLIDEDOWN = "slidedown"
    SMOOTHLEFT = "smoothleft"
    SMOOTHRIGHT = "smoothright"
    CIRCLEOPEN = "circleopen"
    CIRCLECLOSE = "circleclose"
    RADIAL = "radial"
    PIXELIZE = "pixelize"
    ZOOMIN = "zoomin"


class ConcatInput(BaseModel):
    source_videos: list[VideoArtifact] = Field(
        min_length=2, max_length=20, description="The clips to join, in order (2 to 20)."
    )
    transition: Transition = Field(default=Transition.FADE, description="How one clip gives way to the next.")
    transition_duration: float = Field(
        default=0.5,
        ge=0.04,
        le=5.0,
        description="Seconds each transition lasts (clips overlap by this much; rounded to whole frames). "
        "Must be shorter than the first and last clip and at most half of any middle clip. Ignored for 'cut'.",
    )
    resolution: VideoResolution | None = Field(
        default=None, description="Output frame size; default: the first clip's (rounded to even numbers)."
    )
    fps: FrameRate | None = Field(default=None, description="Output frame rate; default: the first clip's.")
    background_music: AudioArtifact | None = Field(
        default=None, description="Music laid under the whole video (looped if short, faded out at the end)."
    )
    music_volume_db: float = Field(
        default=-12.0, ge=-60.0, le=6.0, description="Gain applied to the background music, in dB."
    )

    @model_validator(mode="after")
    def _transition_fits_clips(self) -> Self:
        if self.transition is Transition.CUT:
            return self
        t = self.transition_duration
        last = len(self.source_videos) - 1
        for i, clip in enumerate(self.source_videos):
            middle = 0 < i < last
            limit = clip.duration / 2 if middle else clip.duration
            if (t > limit) if middle else (t >= limit):
                where = "a middle clip, it is overlapped at both ends" if middle else "an end clip"
                raise ValueError(
                    f"transition_duration {t:g} s is too long for clip {i + 1}, which lasts {clip.duration:.3g} s "
                    f"({where}); use at most {limit * 0.99:.3g} s or the 'cut' transition"
                )
        return self


class ConcatOutput(BaseModel):
    video: VideoArtifact


@dataclass(frozen=True)
class ConcatPlan:
    size: tuple[int, int]
    fps: Fraction
    clip_frames: list[int]  # each clip's length in output frames
    overlap_frames: int  # per transition; 0 for cut
    with_audio: bool

    def seconds(self, frames: int) -> float:
        return float(frames / self.fps)

    @property
    def total_frames(self) -> int:
        return sum(self.clip_frames) - self.overlap_frames * (len(self.clip_frames) - 1)

    @property
    def duration(self) -> float:
        return self.seconds(self.total_frames)


def plan_concat(inputs: ConcatInput) -> ConcatPlan:
    first = inputs.source_videos[0]
    size = inputs.resolution.size if inputs.resolution else (even(first.width), even(first.height))
    fps = Fraction(int(inputs.fps)) if inputs.fps else rate_fraction(first.fps)
    # Clip boundaries sit on the frame nearest their true time, so rounding never adds up along the list.
    bounds, elapsed = [0], 0.0
    for clip in inputs.source_videos:
        elapsed += clip.duration
        bounds.append(max(bounds[-1] + 1, round(elapsed * fps)))
    frames = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
    overlap = 0 if inputs.transition is Transition.CUT else max(1, round(inputs.transition_duration * fps))
    with_audio = inputs.background_music is not None or any(v.has_audio for v in inputs.source_videos)
    return ConcatPlan(size, fps, frames, overlap, with_audio)


def _samples(plan: ConcatPlan, frames: int) -> int:
    return round(frames / plan.fps * SAMPLE_RATE)


def _picture_chains(inputs: ConcatInput, plan: ConcatPlan) -> list[str]:
    """Each clip brought to the output's size, rate and length, then the clips joined into [vout]."""
    w, h = plan.size
    chains = [
        f"[{i}:v:0]setpts=PTS-STARTPTS,scale={w}:{h}:force_original_aspect_ratio=decrease:{TO_BT709},"
        f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps={plan.fps},format=yuv420p,"
        f"tpad=stop_mode=clone:stop_duration={plan.seconds(frames) + 1:.3f},"  # hold the last frame if short
        f"trim=end_frame={frames},setpts=PTS-STARTPTS[v{i}]"
        for i, frames in enumerate(plan.clip_frames)
    ]
    n = len(plan.clip_frames)
    if inputs.transition is Transition.CUT:
        return [*chains, f"{''.join(f'[v{i}]' for i in range(n))}concat=n={n}:v=1:a=0[vout]"]
    overlap, elapsed = plan.seconds(plan.overlap_frames), plan.clip_frames[0]
    for i in range(1, n):
        offset = plan.seconds(elapsed - plan.overlap_frames)
        before, after = "[v0]" if i == 1 else f"[vx{i - 1}]", "[vout]" if i == n - 1 else f"[vx{i}]"
        chains.append(
            f"{before}[v{i}]xfade=transition={inputs.transition.value}:duration={overlap:.6f}:offset={offset:.6f}{after}"
        )
        elapsed += plan.clip_frames[i] - plan.overlap_frames
    return chains


def _sound_chains(inputs: ConcatInput, plan: ConcatPlan) -> list[str]:
    """Each clip's sound (silence for clips without) cut to its clip's length, then joined into [clips]."""
    chains = []
    for i, (clip, frames) in enumerate(zip(inputs.source_videos, plan.clip_frames, strict=True)):
        samples = _samples(plan, frames)
        if clip.has_audio:
            chains.append(
                f"[{i}:a:0]asetpts=PTS-STARTPTS,aresample={SAMPLE_RATE},"
                f"aformat=sample_fmts=fltp:channel_layouts=stereo,apad,atrim=end_sample={samples},"
                f"asetpts=PTS-STARTPTS[a{i}]"
            )
        else:
            chains.append(
                f"anullsrc=channel_layout=stereo:sample_rate={SAMPLE_RATE},aformat=sample_fmts=fltp,"
                f"atrim=end_sample={samples}[a{i}]"
            )
    n = len(plan.clip_frames)
    if inputs.transition is Transition.CUT:
        return [*chains, f"{''.join(f'[a{i}]' for i in range(n))}concat=n={n}:v=0:a=1[clips]"]
    for i in range(1, n):
        before, after = "[a0]" if i == 1 else f"[ax{i - 1}]", "[clips]" if i == n - 1 else f"[ax{i}]"
        chains.append(f"{before}[a{i}]acrossfade=ns={_samples(plan, plan.overlap_frames)}:c1=tri:c2=tri{after}")
    return chains


def _music_chain(inputs: ConcatInput, plan: ConcatPlan, music_index: int) -> list[str]:
    total = plan.duration
    fade_out = min(2.0, total / 4)
    music = (
        f"[{music_index}:a:0]aresample={SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo,"
        f"atrim=end_sample={_samples(plan, plan.total_frames)},asetpts=PTS-STARTPTS,"
        f"volume={inputs.music_volume_db:g}dB,afade=t=in:d={min(MUSIC_FADE_IN, total / 4):.3f},"
        f"afade=t=out:st={total - fade_out:.3f}:d={fade_out:.3f}[music]"
    )
    # normalize=0: amix would otherwise halve both, making the clips' own sound quieter than before.
    return [music, "[clips][music]amix=inputs=2:duration=first:normalize=0[joined]"]


def _clip_inputs(clips: list[Path]) -> list[str]:
    return [arg for path in clips for arg in ("-i", str(path))]


def sound_args(
    inputs: ConcatInput, plan: ConcatPlan, clips: list[Path], music: Path | None, ceiling_db: float, out: Path
) -> list[str]:
    """The joined sound (with the music under it), its true peak held at `ceiling_db`, encoded AAC."""
    args = _clip_inputs(clips)
    if music is not None:
        args += ["-stream_loop", "-1", "-i", str(music)]  # loop music shorter than the video
    chains = _sound_chains(inputs, plan)
    if music is not None:  # clips without sound carry silence, so mixing is the same with or without it
        chains += _music_chain(inputs, plan, len(clips))
    else:
        chains.append("[clips]anull[joined]")
    samples = _samples(plan, plan.total_frames)
    chains.append(
        f"[joined]{true_peak_limiter(ceiling_db, SAMPLE_RATE)},apad=whole_len={samples},atrim=end_sample={samples}[a]"
    )
    args += ["-filter_complex", ";".join(chains), "-map", "[a]", *AAC, "-ar", str(SAMPLE_RATE)]
    return [*args, *BITEXACT, str(out)]


def ffmpeg_args(inputs: ConcatInput, plan: ConcatPlan, clips: list[Path], sound: Path | None, out: Path) -> list[str]:
    """The joined picture, with the sound from sound_args copied as it is (its true peak was measured on it)."""
    args = _clip_inputs(clips) + (["-i", str(sound)] if sound is not None else [])
    chains = [*_picture_chains(inputs, plan), f"[vout]{TAG_BT709}[v]"]
    args += ["-filter_complex", ";".join(chains), "-map", "[v]"]
    args += ["-map", f"{len(clips)}:a:0", "-c:a", "copy"] if sound is not None else ["-an"]
    args += ["-frames:v", str(plan.total_frames), "-r", str(plan.fps), *H264, *BT709_TAGS, *BITEXACT, str(out)]
    return args


class ConcatGenerator(BaseGenerator):
    name = "local/concat"
    artifact_type = "video"
    description = "Join 2–20 videos with transitions (cut, fade, wipe…), normalising size and fps; optional music."
    version = "2"  # 2: sound at <= -1 dBTP, full BT.709 tags

    def get_input_schema(self) -> type[ConcatInput]:
        return ConcatInput

    def get_output_schema(self) -> type[ConcatOutput]:
        return ConcatOutput

    async def generate(self, inputs: ConcatInput, context: GeneratorContext) -> ConcatOutput:
        clips = [await context.resolve_artifact(v) for v in inputs.source_videos]
        music = await context.resolve_artifact(inputs.background_music) if inputs.background_music else None
        plan = plan_concat(inputs)
        sound = None
        if plan.with_audio:

            async def encode_sound(gain_db: float, ceiling_db: float, path: Path) -> None:
                # No loudness target, so the gain stays 0 dB: only the peaks are held down.
                await run_timed_ffmpeg(
                    context,
                    sound_args(inputs, plan, clips, music, ceiling_db, path),
                    duration=plan.duration,
                    what=f"{self.name} sound",
                )

            sound, _ = await encode_within_true_peak(encode_sound, context, suffix=".m4a")
        out = context.temp_path(".mp4")
        await run_timed_ffmpeg(
            context,
            ffmpeg_args(inputs, plan, clips, sound, out),
            duration=plan.duration,
            what=f"{self.name} ({len(clips)} clips)",
        )
        context.publish_progress(1.0, f"{self.name}: done")
        return ConcatOutput(video=await context.store_video_result(out, format="mp4"))
