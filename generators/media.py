"""Media facts from the bytes (probe) and the one ffmpeg runner, with progress and clear failures."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import functools
import json
import os
import signal
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ArtifactDecodeError, MediaProcessingError

ProgressFn = Callable[[float, str], None]

# Encoder settings shared by every generator that writes video or audio. Fixed thread counts
# and bitexact flags make the same inputs give the same bytes, which is what caching relies on.
BITEXACT = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]
H264 = [
    "-c:v",
    "libx264",
    "-preset",
    "medium",
    "-crf",
    "20",
    "-pix_fmt",
    "yuv420p",
    "-threads",
    "2",
    "-movflags",
    "+faststart",
]
AAC = ["-c:a", "aac", "-b:a", "160k"]

_AV_FORMATS = {  # PyAV container names -> our format names
    "mov,mp4,m4a,3gp,3g2,mj2": "mp4",
    "matroska,webm": "webm",
    "wav": "wav",
    "mp3": "mp3",
    "ogg": "ogg",
    "flac": "flac",
    "aac": "aac",
    "avi": "avi",
    "gif": "gif",
}
_VIDEO_IN_MKV = {"h264", "hevc", "mpeg4"}


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # image | video | audio | text | lora
    format: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    fps: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    has_audio: bool = False

    def artifact_fields(self) -> dict:
        fields = {
            "image": ("width", "height"),
            "video": ("width", "height", "duration", "fps", "has_audio"),
            "audio": ("duration", "sample_rate", "channels"),
        }.get(self.kind, ())
        return {"format": self.format, **{f: getattr(self, f) for f in fields}}


def ffmpeg_exe() -> str:
    """The ffmpeg binary: $BOARDFLOW_FFMPEG if set, else the one imageio-ffmpeg ships."""
    if exe := os.environ.get("BOARDFLOW_FFMPEG"):
        return exe
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(path: Path, expected_kind: str) -> MediaInfo:
    """Read the real media facts of `path`, refusing files that do not decode as `expected_kind`."""
    if expected_kind == "image":
        return _probe_image(path)
    if expected_kind in ("video", "audio"):
        return _probe_av(path, expected_kind)
    if expected_kind == "text":
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ArtifactDecodeError(f"{path.name} is not UTF-8 text ({exc}).") from exc
        return MediaInfo(kind="text", format="txt")
    if expected_kind == "lora":
        return _probe_safetensors(path)
    raise ValueError(f"unknown artifact kind {expected_kind!r}")


def _probe_image(path: Path) -> MediaInfo:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            fmt = (img.format or "").lower()
            img.load()  # decode every pixel: a truncated file fails here, not later
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ArtifactDecodeError(
            f"{path.name} is not a decodable image ({exc}).",
            hint="Store it with the function for its real type, or regenerate it.",
        ) from exc
    return MediaInfo(kind="image", format={"jpeg": "jpeg", "mpo": "jpeg"}.get(fmt, fmt), width=width, height=height)


def _probe_av(path: Path, expected_kind: str) -> MediaInfo:
    import av
    from av.error import FFmpegError
    from av.stream import Disposition

    try:
        with av.open(str(path)) as container:
            videos = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
            audios = list(container.streams.audio)
            fmt = _AV_FORMATS.get(container.format.name, container.format.name.split(",")[0])
            if container.format.name.endswith("_pipe") or container.format.name == "image2":
                raise ArtifactDecodeError(
                    f"{path.name} is a still image ({fmt.removesuffix('_pipe')}), not {expected_kind}.",
                    hint="Store it with store_image_result.",
                )
            if fmt == "webm" and any(s.codec_context.name in _VIDEO_IN_MKV for s in videos):
                fmt = "mkv"
            duration = container.duration / 1_000_000 if container.duration else None
            if expected_kind == "video":
                if not videos:
                    raise ArtifactDecodeError(
                        f"{path.name} has no video stream; it is not a video.",
                        hint="Store audio with store_audio_result.",
                    )
                stream = videos[0]
                measured = _scan_whole(container, stream, videos + audios)
                fps = float(stream.average_rate or stream.guessed_rate or 0)
                duration = duration or _stream_duration(stream) or measured
                if not duration or not fps:
                    raise ArtifactDecodeError(f"{path.name}: the video stream has no duration or frame rate.")
                return MediaInfo(
                    kind="video",
                    format=fmt,
                    width=stream.codec_context.width,
                    height=stream.codec_context.height,
                    duration=duration,
                    fps=fps,
                    has_audio=bool(audios),
                )
            if not audios:
                raise ArtifactDecodeError(f"{path.name} has no audio stream; it is not audio.")
            if videos:
                raise ArtifactDecodeError(
                    f"{path.name} has a video stream; it is a video, not audio.",
                    hint="Store it with store_video_result.",
                )
            stream = audios[0]
            measured = _scan_whole(container, stream, audios)
            duration = duration or _stream_duration(stream) or measured
            if not duration:
                raise ArtifactDecodeError(f"{path.name}: the audio stream has no duration.")
            return MediaInfo(
                kind="audio",
                format=fmt,
                duration=duration,
                sample_rate=stream.codec_context.sample_rate,
                channels=stream.codec_context.layout.nb_channels,
            )
    except ArtifactDecodeError:
        raise
    except (FFmpegError, OSError, ValueError) as exc:
        raise ArtifactDecodeError(f"{path.name} is not a decodable {expected_kind} file ({exc}).") from exc


def _scan_whole(container, stream, streams: list) -> float | None:
    """Decode the first frame of `stream` and read every packet to prove the file is whole.

    A file cut short (an interrupted download or write) still opens and its first frame decodes,
    so where the packets end is compared with the duration its header promises. Packets are only
    demuxed, not decoded, so this costs about one read of the file.
    """
    name = Path(container.name).name
    ends: dict[int, float] = {}
    longest_packet, decoded = 0.0, False
    for packet in container.demux(streams):
        if not decoded and packet.stream.index == stream.index:
            decoded = bool(packet.decode())
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None or not packet.stream.time_base:
            continue
        length = float((packet.duration or 0) * packet.stream.time_base)
        longest_packet = max(longest_packet, length)
        end = float(ts * packet.stream.time_base) + length
        ends[packet.stream.index] = max(ends.get(packet.stream.index, end), end)
    if not decoded:
        raise ArtifactDecodeError(f"{name}: the {stream.type} stream holds no decodable frame.")
    slack = max(0.06, 2 * longest_packet)  # packet timing granularity, encoder padding
    promised = [
        (s.index, float(((s.start_time or 0) + s.duration) * s.time_base))
        for s in streams
        if s.duration and s.time_base
    ]
    if not promised and container.duration:
        promised = [(None, ((container.start_time or 0) + container.duration) / 1_000_000)]
    for index, until in promised:
        got = ends.get(index, 0.0) if index is not None else max(ends.values(), default=0.0)
        if got < until - slack:
            raise ArtifactDecodeError(
                f"{name} is cut short: its media stops at {got:.2f} s of the {until:.2f} s its header promises.",
                hint="Download or render the file again.",
            )
    # The measured length, for files whose header names none (live-recorded WebM, for one).
    start = (container.start_time or 0) / 1_000_000
    return max(ends.values()) - start if ends else None


def _stream_duration(stream) -> float | None:
    return float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None


def _probe_safetensors(path: Path) -> MediaInfo:
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise ArtifactDecodeError(f"{path.name} is too short to be a safetensors LoRA file.")
        (length,) = struct.unpack("<Q", head)
        try:
            json.loads(fh.read(min(length, 100_000_000)))
        except ValueError as exc:
            raise ArtifactDecodeError(f"{path.name} has no safetensors JSON header ({exc}).") from exc
    return MediaInfo(kind="lora", format="safetensors")


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@functools.cache
def _prctl():
    """libc's prctl on Linux, else None; looked up in the parent, so a forked child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True).prctl


def child_setup(nice: int = 0) -> Callable[[], None]:
    """A `preexec_fn` for a helper process (ffmpeg, the speech worker): it dies with the process that started it.

    A SIGKILL or an OOM kill of boardflow runs none of its cleanup, so the kernel is asked to do it:
    PR_SET_PDEATHSIG sends the child SIGKILL when its parent dies. (Strictly, when the forking *thread*
    ends: children are started from the event loop's thread, which outlives the coroutine awaiting them.)
    `nice` > 0 also lowers the child's priority.
    """
    prctl, parent = _prctl(), os.getpid()

    def setup() -> None:
        if nice > 0:
            os.nice(nice)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the line above took effect
                os._exit(1)

    return setup


async def reap(proc: asyncio.subprocess.Process) -> None:
    """After a cancel or an error: kill `proc` if it still runs, wait for it, and close its transport now.

    Left to the garbage collector, a transport whose pipes never reached EOF is closed after the event loop
    is, and prints "Exception ignored in BaseSubprocessTransport.__del__ … Event loop is closed" with a
    traceback (seen after a Ctrl-C that stopped a run mid-ffmpeg).
    """
    transport = getattr(proc, "_transport", None)  # asyncio keeps no public handle on it
    try:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    finally:  # even when this wait is cancelled too (a second Ctrl-C, or asyncio.run cancelling what is left)
        if transport is not None:
            transport.close()  # closes the pipes while the loop runs (and kills the process if it still does)


async def run_ffmpeg(
    args: Sequence[str],
    *,
    duration: float | None = None,
    progress: ProgressFn | None = None,
    what: str = "ffmpeg",
    nice: int = 0,
) -> None:
    """Run ffmpeg with `args` (no binary, no -y needed), reporting progress against `duration` seconds.

    `nice` > 0 runs it at a lower priority (work that may only take CPU the rest leaves idle, like previews).

    Raises MediaProcessingError with the command and the tail of stderr when ffmpeg fails.
    """
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-progress",
        "pipe:1",
        "-nostats",
        *args,
    ]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=child_setup(nice),
    )
    tail: collections.deque[str] = collections.deque(maxlen=25)

    async def read_stderr() -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            tail.append(line.decode(errors="replace").rstrip())

    async def read_progress() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            key, _, value = raw.decode(errors="replace").strip().partition("=")
            if progress and duration and key == "out_time_us" and value.isdigit():
                done = min(int(value) / 1e6 / duration, 1.0)
                progress(done, f"{what}: {done:.0%}")

    try:
        await asyncio.gather(read_stderr(), read_progress())
        code = await proc.wait()
    except BaseException:
        await reap(proc)
        raise
    if code != 0:
        raise MediaProcessingError(f"{what} failed (exit code {code}).", command=cmd, stderr_tail="\n".join(tail))
